package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Slack allows about one message per second per channel and tolerates
// short bursts (https://docs.slack.dev/apis/web-api/rate-limits).
const (
	postRate  = rate.Limit(1) // messages per second per channel
	postBurst = 4
	// maxPacedChannels bounds the channels whose pacing is remembered.
	maxPacedChannels = 1000
)

// pacer paces the messages posted to each channel with a token bucket per
// channel. A channel whose bucket is full again is forgotten when room is
// needed: a fresh bucket is full too, so forgetting it changes nothing.
type pacer struct {
	limit    rate.Limit
	burst    int
	max      int // channels remembered at most
	mu       sync.Mutex
	channels map[string]*rate.Limiter
}

func newPacer(limit rate.Limit, burst, maxChannels int) *pacer {
	return &pacer{limit: limit, burst: burst, max: maxChannels, channels: map[string]*rate.Limiter{}}
}

// maxPaceWait is the longest wait for a channel's bucket inside a sync;
// longer waits are left to the queue (see wait).
const maxPaceWait = 250 * time.Millisecond

// wait returns when a message may be posted to channel. When the channel's
// bucket has no room for a while, it returns a *RetryAfterError instead:
// the queue retries the sync then, and the worker is free meanwhile, so a
// storm of incidents in one channel does not hold up pages in the others.
func (p *pacer) wait(ctx context.Context, channel string) error {
	r := p.limiter(channel).Reserve()
	d := r.Delay()
	if d > maxPaceWait {
		r.Cancel()
		return &RetryAfterError{RetryAfter: d, Err: fmt.Errorf("pace messages to Slack channel %s", channel)}
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return fmt.Errorf("pace messages to Slack channel %s: %w", channel, ctx.Err())
	}
}

// limiter returns the channel's bucket, making room for it if needed.
func (p *pacer) limiter(channel string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	if lim, ok := p.channels[channel]; ok {
		return lim
	}
	if len(p.channels) >= p.max {
		p.evict(time.Now())
	}
	lim := rate.NewLimiter(p.limit, p.burst)
	p.channels[channel] = lim
	return lim
}

// evict forgets the channels whose buckets are full; if none is, the one
// closest to full, so that the map stays bounded. Callers hold p.mu.
func (p *pacer) evict(now time.Time) {
	fullest, most := "", -1.0
	for ch, lim := range p.channels {
		tokens := lim.TokensAt(now)
		if tokens >= float64(p.burst) {
			delete(p.channels, ch)
			continue
		}
		if tokens > most {
			fullest, most = ch, tokens
		}
	}
	if len(p.channels) >= p.max {
		delete(p.channels, fullest)
	}
}

// size is the number of channels remembered.
func (p *pacer) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.channels)
}
