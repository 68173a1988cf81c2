package storage

import (
	"context"
	"fmt"
	"time"
)

// Announcement identifies one announcement of an on-call schedule: a
// handoff, a reminder to the incoming person, a warning about gaps. The
// four fields together are its unique key.
type Announcement struct {
	Schedule string
	Kind     string
	At       time.Time // stored to the microsecond
	Person   string    // "" for announcements that are nobody's
}

func (a Announcement) String() string {
	return fmt.Sprintf("%s %s of schedule %q at %s", a.Kind, a.Person, a.Schedule, a.At.UTC().Format(time.RFC3339))
}

// ClaimAnnouncement records that a is about to be sent. It returns true
// if the caller made the claim and should send, false if a was claimed
// before (by this process or another replica).
func (db *DB) ClaimAnnouncement(ctx context.Context, a Announcement) (bool, error) {
	var c textCheck
	c.text("schedule", a.Schedule)
	c.text("kind", a.Kind)
	c.text("person", a.Person)
	if c.err != nil {
		return false, fmt.Errorf("claim announcement %s: %w", a, c.err)
	}
	tag, err := db.pool.Exec(ctx, `
		INSERT INTO announcements (schedule, kind, at, person) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`,
		a.Schedule, a.Kind, a.At, a.Person)
	if err != nil {
		return false, fmt.Errorf("claim announcement %s: %w", a, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseAnnouncement drops the claim of a, for an announcement that
// certainly was not sent, so that it can be claimed again. Releasing an
// announcement never claimed is no error.
func (db *DB) ReleaseAnnouncement(ctx context.Context, a Announcement) error {
	_, err := db.pool.Exec(ctx, `
		DELETE FROM announcements WHERE schedule = $1 AND kind = $2 AND at = $3 AND person = $4`,
		a.Schedule, a.Kind, a.At, a.Person)
	if err != nil {
		return fmt.Errorf("release announcement %s: %w", a, err)
	}
	return nil
}

// PruneAnnouncements deletes the claims of announcements for moments
// before the given time and returns how many it deleted.
func (db *DB) PruneAnnouncements(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM announcements WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune announcements before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}
