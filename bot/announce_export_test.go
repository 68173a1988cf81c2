package bot

import (
	"context"
	"time"
)

// Tick makes the announcements due at now, as a's Run does at each wake,
// and returns the next moment one is due (zero if none).
func Tick(ctx context.Context, a *Announcer, now time.Time) (time.Time, error) {
	return a.tick(ctx, now)
}
