package escalation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/oncallbot/oncall"
)

// HeartbeatStore tells when each integration last sent a heartbeat
// (storage.DB).
type HeartbeatStore interface {
	LastHeartbeats(ctx context.Context) (map[string]time.Time, error)
}

// HeartbeatWatcher opens an incident for each integration whose heartbeat
// is overdue: silent longer than its Heartbeat timeout since its last
// heartbeat (or since the watcher started, for one never heard from). The
// next heartbeat resolves it.
type HeartbeatWatcher struct {
	store   HeartbeatStore
	watched []oncall.Integration
	process func(ctx context.Context, b oncall.AlertBatch) error
	clock   Clock
	log     *slog.Logger
	started time.Time
	// recorded is the batch of the last miss recorded per integration
	// (Check runs in one goroutine).
	recorded map[string]string
}

// NewHeartbeatWatcher watches the integrations of in that have a
// Heartbeat; process records the batch of a missed heartbeat
// (Service.Process).
func NewHeartbeatWatcher(store HeartbeatStore, in []oncall.Integration,
	process func(ctx context.Context, b oncall.AlertBatch) error, clock Clock, log *slog.Logger) *HeartbeatWatcher {
	if clock == nil {
		clock = realClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &HeartbeatWatcher{store: store, process: process, clock: clock, log: log, started: clock.Now(),
		recorded: map[string]string{}}
	for _, it := range in {
		if it.Heartbeat > 0 {
			w.watched = append(w.watched, it)
		}
	}
	return w
}

// Run checks every 5 seconds until ctx ends.
func (w *HeartbeatWatcher) Run(ctx context.Context) {
	if len(w.watched) == 0 {
		return
	}
	t := time.NewTicker(5 * time.Second) // a miss is seen within 5s of its due time
	defer t.Stop()
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "heartbeat check failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check opens the incidents of the heartbeats overdue now. The batch of a
// miss is named after the integration and its last heartbeat, so that
// every check and every replica records the same miss once.
func (w *HeartbeatWatcher) Check(ctx context.Context) error {
	last, err := w.store.LastHeartbeats(ctx)
	if err != nil {
		return err
	}
	now := w.clock.Now()
	var errs []error
	for _, it := range w.watched {
		seen, ok := last[it.Name]
		if !ok {
			seen = w.started // never heard from: count from the start
		}
		if now.Sub(seen) < it.Heartbeat {
			continue
		}
		title := fmt.Sprintf("No heartbeat from %s for %s", it.Name, it.Heartbeat)
		b := oncall.AlertBatch{
			ID: fmt.Sprintf("heartbeat-missed:%s:%d", it.Name, seen.UnixNano()),
			// Received as of the last heartbeat: any heartbeat after it,
			// even one processed late (a backlog, the database down),
			// resolves the incident rather than counting as stale.
			Integration: it.Name, Kind: it.Kind, ReceivedAt: seen,
			GroupKey: oncall.HeartbeatGroupKey, Status: oncall.AlertFiring, Severity: oncall.SeverityCritical,
			Title:   title,
			Message: fmt.Sprintf("The last heartbeat of %s was at %s.", it.Name, seen.UTC().Format(time.RFC3339)),
			Alerts: []oncall.Alert{{Fingerprint: oncall.HeartbeatGroupKey, Status: oncall.AlertFiring, Title: title,
				StartsAt: seen.Add(it.Heartbeat)}},
		}
		for _, win := range it.Maintenance {
			b.Maintenance = b.Maintenance || win.Contains(now) // shown, nobody paged
		}
		if w.recorded[it.Name] == b.ID {
			continue // this miss is recorded; its incident stays open until a heartbeat
		}
		if err := w.process(ctx, b); err != nil {
			errs = append(errs, fmt.Errorf("open the missed-heartbeat incident of %q: %w", it.Name, err))
			continue
		}
		w.recorded[it.Name] = b.ID
		w.log.WarnContext(ctx, "heartbeat missed", "integration", it.Name, "last", seen, "timeout", it.Heartbeat)
	}
	return errors.Join(errs...)
}
