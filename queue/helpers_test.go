package queue

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSubjectToken(t *testing.T) {
	tests := []struct{ kind, want string }{
		{"alertmanager", "alertmanager"},
		{"grafana_v2-beta", "grafana_v2-beta"},
		{"", "other"},
		{"a.b", "other"},
		{"a*", "other"},
		{">", "other"},
		{"with space", "other"},
		{"ünïcode", "other"},
	}
	for _, tt := range tests {
		if got := subjectToken(tt.kind); got != tt.want {
			t.Errorf("subjectToken(%q) = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		delivered uint64
		base      time.Duration // the delay before jitter
	}{
		{0, 250 * time.Millisecond},
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{3, time.Second},
		{5, 4 * time.Second},
		{8, 32 * time.Second},
		{9, time.Minute},
		{40, time.Minute},
		{1 << 63, time.Minute},
	}
	for _, tt := range tests {
		for range 100 {
			got := retryDelay(tt.delivered)
			if got > tt.base || got < tt.base*3/4 {
				t.Fatalf("retryDelay(%d) = %s, want within [%s, %s]", tt.delivered, got, tt.base*3/4, tt.base)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pass@a:4222,nats://b:4222", "nats://xxxxx@a:4222,nats://b:4222"},
		{"tls://s3cret-token@nats.example.com", "tls://xxxxx@nats.example.com"},
		{"u:p@host:4222", "xxxxx@host:4222"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type rateLimited struct{ after time.Duration }

func (e rateLimited) Error() string             { return "rate limited" }
func (e rateLimited) RetryDelay() time.Duration { return e.after }

func TestNakDelayHonoursRetryDelay(t *testing.T) {
	wrapped := fmt.Errorf("sync incident 7: %w", rateLimited{after: 7 * time.Second})
	if got, asked := nakDelay(wrapped, 1); got != 7*time.Second || !asked {
		t.Errorf("nakDelay(rate limited 7s) = %s, %v; want 7s, true", got, asked)
	}
	// Without a delay of its own, the backoff for the delivery count applies.
	for _, err := range []error{errors.New("boom"), rateLimited{}} {
		if got, asked := nakDelay(err, 1); got > minRetryDelay || got < minRetryDelay*3/4 || asked {
			t.Errorf("nakDelay(%v, 1) = %s, %v; want the first backoff step near %s", err, got, asked, minRetryDelay)
		}
	}
}
