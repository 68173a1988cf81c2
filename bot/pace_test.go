package bot

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestPacerKeepsOneBucketPerChannel(t *testing.T) {
	p := newPacer(rate.Every(time.Hour), 2, 10)
	ctx := t.Context()
	for range 2 { // the burst
		if err := p.wait(ctx, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	// C1's bucket is empty now: another post would wait an hour. The sync
	// does not hold its worker that long; it hands the wait to the queue.
	err := p.wait(ctx, "C1")
	var later *RetryAfterError
	if !errors.As(err, &later) || later.RetryAfter < 59*time.Minute || later.RetryAfter > time.Hour {
		t.Errorf("a third post to C1 within the hour: %v, want a RetryAfterError of about an hour", err)
	}
	// Other channels have buckets of their own.
	if err := p.wait(ctx, "C2"); err != nil {
		t.Errorf("C1's posts held back a post to C2: %v", err)
	}
	// The refused post took no token: C1 still has none, and one comes
	// after the same hour, not two.
	err = p.wait(ctx, "C1")
	if !errors.As(err, &later) || later.RetryAfter > time.Hour {
		t.Errorf("after a refused post, C1 waits %v, want at most an hour", err)
	}
}

func TestPacerStaysBounded(t *testing.T) {
	tests := []struct {
		name     string
		limit    rate.Limit
		wantSize int // after posting to 5 channels with room for 3
	}{
		// Buckets refill at once: every one is idle, so all are forgotten
		// when the fourth channel needs room; the fifth finds room.
		{"idle channels are forgotten", rate.Inf, 2},
		// Buckets stay empty: the map is full of busy channels, and one of
		// them makes room for each new one.
		{"busy channels are bounded", rate.Every(time.Hour), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(tt.limit, 1, 3)
			for i := range 5 {
				if err := p.wait(t.Context(), fmt.Sprintf("C%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.size(); got != tt.wantSize {
				t.Errorf("%d channels remembered, want %d", got, tt.wantSize)
			}
		})
	}
}
