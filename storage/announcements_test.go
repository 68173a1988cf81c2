package storage

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestClaimAnnouncement(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a := Announcement{Schedule: "primary", Kind: "handoff", At: at, Person: "alice@example.com"}

	// Replicas racing for the same announcement: exactly one wins.
	const racers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range racers {
		wg.Go(func() {
			ok, err := db.ClaimAnnouncement(ctx, a)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of %d racing claims won, want 1", wins, racers)
	}

	// Every field is part of the key; the same instant in another zone is
	// the same key.
	tests := []struct {
		name string
		a    Announcement
		want bool
	}{
		{"same again", a, false},
		{"same instant, other zone", Announcement{Schedule: "primary", Kind: "handoff", At: at.In(time.FixedZone("X", 3600)), Person: "alice@example.com"}, false},
		{"other schedule", Announcement{Schedule: "secondary", Kind: "handoff", At: at, Person: "alice@example.com"}, true},
		{"other kind", Announcement{Schedule: "primary", Kind: "reminder", At: at, Person: "alice@example.com"}, true},
		{"other time", Announcement{Schedule: "primary", Kind: "handoff", At: at.Add(time.Second), Person: "alice@example.com"}, true},
		{"other person", Announcement{Schedule: "primary", Kind: "handoff", At: at, Person: "bob@example.com"}, true},
		{"nobody", Announcement{Schedule: "primary", Kind: "handoff", At: at}, true},
	}
	for _, tt := range tests {
		got, err := db.ClaimAnnouncement(ctx, tt.a)
		if err != nil || got != tt.want {
			t.Errorf("%s: ClaimAnnouncement = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}

	// A released claim can be made again, once.
	if err := db.ReleaseAnnouncement(ctx, a); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if got, err := db.ClaimAnnouncement(ctx, a); err != nil || got != want {
			t.Errorf("claim %d after release = %v, %v; want %v", i+1, got, err, want)
		}
	}

	if _, err := db.ClaimAnnouncement(ctx, Announcement{Schedule: "bad\x00", Kind: "handoff", At: at}); !errors.Is(err, ErrInvalidText) {
		t.Errorf("claim with a NUL byte = %v, want ErrInvalidText", err)
	}
}

func TestPruneAnnouncements(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		a := Announcement{Schedule: "primary", Kind: "gaps", At: day.AddDate(0, 0, i)}
		if ok, err := db.ClaimAnnouncement(ctx, a); err != nil || !ok {
			t.Fatalf("claim %s = %v, %v", a, ok, err)
		}
	}
	n, err := db.PruneAnnouncements(ctx, day.AddDate(0, 0, 2))
	if err != nil || n != 2 {
		t.Fatalf("PruneAnnouncements = %d, %v; want 2 deleted", n, err)
	}
	// The pruned ones can be claimed again, the kept one cannot.
	for i, want := range []bool{true, true, false} {
		a := Announcement{Schedule: "primary", Kind: "gaps", At: day.AddDate(0, 0, i)}
		if got, err := db.ClaimAnnouncement(ctx, a); err != nil || got != want {
			t.Errorf("claim of day %d after pruning = %v, %v; want %v", i, got, err, want)
		}
	}
}
