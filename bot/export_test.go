package bot

import (
	"time"

	"golang.org/x/time/rate"
)

// UpdateInterval is updateInterval, for tests.
const UpdateInterval = updateInterval

// SetClock makes b read the time from now. Call it before b is used.
func SetClock(b *Bot, now func() time.Time) { b.now = now }

// SetPacing replaces b's pacing of posts per channel. Call it while b posts
// nothing.
func SetPacing(b *Bot, limit rate.Limit, burst int) {
	b.pacer = newPacer(limit, burst, maxPacedChannels)
}
