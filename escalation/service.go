// Package escalation owns the incident state machine (what an alert does to
// an incident, what a person's action does), the escalation chains that
// page people until someone acknowledges, and the delivery workers that
// send those pages.
package escalation

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// Store is the part of the database the service changes.
type Store interface {
	RecordBatch(ctx context.Context, b oncall.AlertBatch) (storage.RecordResult, error)
	Transition(ctx context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (oncall.Incident, bool, error)
	Silence(ctx context.Context, id int64, until time.Time, actor oncall.Actor, key string) (oncall.Incident, bool, error)
	Unsilence(ctx context.Context, id int64, actor oncall.Actor, key string) (oncall.Incident, bool, error)
}

// Notifier is told about every committed change of an incident, so that the
// Slack message and the pages follow. It must be durable (a JetStream publish).
type Notifier interface {
	PublishIncidentChanged(ctx context.Context, incidentID int64) error
}

// Escalator runs escalation chains (Engine): it is woken when an incident
// is opened (its chain starts in the same transaction) and told of every
// action that changed an incident.
type Escalator interface {
	Wake()
	Changed(ctx context.Context, inc oncall.Incident, a oncall.Action) error
}

// Service applies alerts and people's actions to incidents.
type Service struct {
	store     Store
	notify    Notifier
	escalator Escalator
	log       *slog.Logger
	processed *prometheus.CounterVec
	actions   *prometheus.CounterVec
}

// NewService returns a Service over store that tells notify of changes
// and esc (nil: no chains run) of people's actions. Its metrics are
// registered on reg unless it is nil.
func NewService(store Store, notify Notifier, esc Escalator, log *slog.Logger, reg prometheus.Registerer) *Service {
	s := &Service{
		store:     store,
		notify:    notify,
		escalator: esc,
		log:       log,
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oncall_alert_batches_processed_total",
			Help: "Queued alert batches stored, by outcome (created, joined, resolved, duplicate, stale, no_incident, error).",
		}, []string{"outcome"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oncall_incident_actions_total",
			Help: "Actions on incidents by people, by action and outcome (changed, unchanged, error).",
		}, []string{"action", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(s.processed, s.actions)
	}
	return s
}

// Process stores one queued batch and announces the change. It is safe to
// call again with the same batch (redelivery after a crash): the store
// deduplicates by batch ID, and the change is announced again in case the
// first announcement was lost, which the Slack sync absorbs.
func (s *Service) Process(ctx context.Context, b oncall.AlertBatch) error {
	res, err := s.store.RecordBatch(ctx, b)
	s.processed.WithLabelValues(outcome(res, err)).Inc()
	if err != nil {
		return fmt.Errorf("record batch %s of %q: %w", b.ID, b.Integration, err)
	}
	if res.UnknownIntegration && b.Kind != oncall.PageKind { // direct pages have no configured integration
		what := "alert for an integration that is no longer configured; stored, not posted"
		if b.Channel != "" {
			what = "alert for an integration that is no longer configured; stored, posted only to the channel of its route"
		}
		s.log.Warn(what, "integration", b.Integration, "kind", b.Kind, "batch", b.ID, "incident", res.IncidentID,
			"channel", b.Channel)
	}
	if res.IncidentID == 0 && b.Heartbeat {
		s.log.Debug("heartbeat recorded", "integration", b.Integration, "batch", b.ID)
		return nil
	}
	if res.IncidentID == 0 {
		why := "resolved alert without an open incident"
		if b.Action != "" || b.Note != "" {
			why = "action or note of the source without an open incident"
		}
		if res.Stale {
			why = "firing alert older than the resolve already recorded for its group; no incident opened"
		}
		s.log.Info(why, "integration", b.Integration, "group_key", b.GroupKey, "batch", b.ID)
		return nil
	}
	// A repeat joining an open incident is routine (a storm is thousands):
	// debug; opening and resolving are worth an info line.
	level := slog.LevelInfo
	if !res.Created && !res.Resolved {
		level = slog.LevelDebug
	}
	s.log.Log(ctx, level, "alert batch stored", "integration", b.Integration, "batch", b.ID, "incident", res.IncidentID,
		"created", res.Created, "resolved", res.Resolved, "duplicate", res.Duplicate, "stale", res.Stale,
		"alerts", len(b.Alerts))
	if err := s.notify.PublishIncidentChanged(ctx, res.IncidentID); err != nil {
		return fmt.Errorf("announce incident %d: %w", res.IncidentID, err)
	}
	if res.Created && s.escalator != nil {
		s.escalator.Wake() // its first step is due now
	}
	return nil
}

// Act applies a person's action. key makes a retried request idempotent.
// The incident is announced even when nothing changed (a double click, a
// retried request): if the first announcement was lost, this one repairs the
// Slack message, and a sync with nothing to change costs no Slack call.
func (s *Service) Act(ctx context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (oncall.Incident, error) {
	inc, changed, err := s.store.Transition(ctx, id, a, actor, key)
	s.actions.WithLabelValues(string(a), actionOutcome(changed, err)).Inc()
	if err != nil {
		return inc, fmt.Errorf("%s incident %d: %w", a, id, err)
	}
	if changed {
		s.log.Info("incident changed", "incident", id, "action", a, "actor", actor, "status", inc.Status)
		if s.escalator != nil {
			if err := s.escalator.Changed(ctx, inc, a); err != nil {
				// The action stands; the engine's next look at the
				// incident (it re-reads it) repairs what it can.
				s.log.Error("escalation did not follow the action", "incident", id, "action", a, "err", err)
			}
		}
	}
	if err := s.notify.PublishIncidentChanged(ctx, id); err != nil {
		return inc, fmt.Errorf("announce incident %d: %w", id, err)
	}
	return inc, nil
}

// Silence pauses the paging of an incident until until
// (oncall.UntilResolved: until it is resolved); Unsilence (until zero)
// ends it. key makes a retried request idempotent. The incident is
// announced, as Act does.
func (s *Service) Silence(ctx context.Context, id int64, until time.Time, actor oncall.Actor, key string) (
	oncall.Incident, error) {
	var (
		inc     oncall.Incident
		changed bool
		err     error
		what    = "silence"
	)
	if until.IsZero() {
		what = "unsilence"
		inc, changed, err = s.store.Unsilence(ctx, id, actor, key)
	} else {
		inc, changed, err = s.store.Silence(ctx, id, until, actor, key)
	}
	s.actions.WithLabelValues(what, actionOutcome(changed, err)).Inc()
	if err != nil {
		return inc, fmt.Errorf("%s incident %d: %w", what, id, err)
	}
	if changed {
		s.log.Info("incident "+what+"d", "incident", id, "actor", actor, "until", until)
		if s.escalator != nil {
			s.escalator.Wake() // an unsilenced chain is due now
		}
	}
	if err := s.notify.PublishIncidentChanged(ctx, id); err != nil {
		return inc, fmt.Errorf("announce incident %d: %w", id, err)
	}
	return inc, nil
}

func outcome(res storage.RecordResult, err error) string {
	switch {
	case err != nil:
		return "error"
	case res.Duplicate:
		return "duplicate"
	case res.Stale:
		return "stale"
	case res.IncidentID == 0:
		return "no_incident"
	case res.Created:
		return "created"
	case res.Resolved:
		return "resolved"
	}
	return "joined"
}

func actionOutcome(changed bool, err error) string {
	switch {
	case err != nil:
		return "error"
	case changed:
		return "changed"
	}
	return "unchanged"
}
