package escalation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// EscalationStore is the part of the database the engine uses.
type EscalationStore interface {
	StartEscalation(ctx context.Context, incidentID int64, chain string, at time.Time) (bool, error)
	StopEscalation(ctx context.Context, incidentID int64, wakeAt time.Time) (bool, error)
	RestartEscalation(ctx context.Context, incidentID int64, at time.Time) (bool, error)
	EscalateNow(ctx context.Context, incidentID int64, at time.Time) (bool, error)
	ProcessDueEscalations(ctx context.Context, now time.Time, limit int, fn storage.EscalationFunc) (int, []int64, error)
	RepairEscalations(ctx context.Context, at time.Time, grace time.Duration) ([]int64, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// DeliveryClaimer hands due deliveries to a publish function and marks
// them queued (storage.DB).
type DeliveryClaimer interface {
	ClaimDueDeliveries(ctx context.Context, now time.Time, limit int,
		publish func(ctx context.Context, ds []oncall.Delivery) error) (int, error)
	RequeueStuckDeliveries(ctx context.Context, stuckAfter time.Duration, limit int,
		publish func(ctx context.Context, ds []oncall.Delivery) error) (int, error)
}

// DeliveryQueue stores deliveries durably for the delivery workers
// (queue.Queue).
type DeliveryQueue interface {
	PublishDeliveries(ctx context.Context, ds []oncall.Delivery) error
}

// OnCaller tells who is on call for a schedule at an instant.
type OnCaller interface {
	OnCall(ctx context.Context, schedule string, at time.Time) ([]oncall.Shift, error)
}

// People gives each person their notification plan.
type People interface {
	Plan(person string, sev oncall.Severity) []oncall.NotifyRule
}

// Clock tells the time; tests use a fake one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// EngineConfig is what an Engine works with. Store, Schedules and People
// are required.
type EngineConfig struct {
	Store     EscalationStore
	Chains    map[string]oncall.EscalationChain
	Schedules OnCaller
	People    People
	Clock     Clock    // nil: the system clock
	Notifier  Notifier // nil: changes are not announced
	// Deliveries and Queue, both set, make each tick queue the deliveries
	// that are due for the delivery workers.
	Deliveries DeliveryClaimer
	Queue      DeliveryQueue
	Logger     *slog.Logger
	// Registerer, if set, gets the engine's metrics.
	Registerer prometheus.Registerer
	// OnStep, if set, is called for every due escalation taken, with the
	// time it was due and the time it was taken (benchmarks).
	OnStep func(due, taken time.Time)
}

const (
	// tickBatch is how many due escalations one call of the store
	// processes; tickWorkers how many such calls run at once.
	tickBatch   = 50
	tickWorkers = 4

	// Every sweepEvery the engine repairs what a failure left behind:
	// chains a lost restart left stopped (repairGrace after their last
	// change) and deliveries whose queue message may be lost (stuckAfter).
	sweepEvery  = 30 * time.Second
	repairGrace = 30 * time.Second
	stuckAfter  = 5 * time.Minute
)

// Engine runs the escalation chains of incidents: it takes the steps that
// are due, resolving their targets to people and each person's plan to
// deliveries (rows a delivery worker sends). Postgres holds every chain's
// position, so several engines on one database share the work, and a
// restarted one carries on where it stopped.
type Engine struct {
	store     EscalationStore
	chains    map[string]oncall.EscalationChain
	schedules OnCaller
	people    People
	clock     Clock
	notify    Notifier
	claimer   DeliveryClaimer
	queue     DeliveryQueue
	log       *slog.Logger
	wake      chan struct{}
	lateness  prometheus.Histogram
	onStep    func(due, taken time.Time)
}

// NewEngine returns an engine over cfg.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil || cfg.Schedules == nil || cfg.People == nil {
		return nil, errors.New("new escalation engine: store, schedules and people are required")
	}
	e := &Engine{
		store: cfg.Store, chains: cfg.Chains, schedules: cfg.Schedules, people: cfg.People,
		clock: cfg.Clock, notify: cfg.Notifier, claimer: cfg.Deliveries, queue: cfg.Queue, log: cfg.Logger,
		wake: make(chan struct{}, 1), onStep: cfg.OnStep,
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oncall_escalation_step_lateness_seconds",
			Help:    "How long after its due time an escalation step was taken.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
		}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(e.lateness); err != nil {
			return nil, fmt.Errorf("new escalation engine: register metrics: %w", err)
		}
	}
	if e.clock == nil {
		e.clock = realClock{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// Run ticks when the next step or page falls due (at least every second,
// so that another replica's new work is seen), and at once when Wake is
// called, until ctx ends. A failed tick is logged and tried again at the
// next one.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	var swept time.Time
	for {
		if time.Since(swept) >= sweepEvery {
			if err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "escalation sweep failed", "error", err)
			}
			swept = time.Now()
		}
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.ErrorContext(ctx, "escalation tick failed", "error", err)
		}
		t.Reset(e.untilNextDue(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
	}
}

// Bounds of the wait between two ticks: work due now but locked by another
// replica must not make the engine spin, and work planned by another
// replica is seen within a second.
const (
	minTickWait = 20 * time.Millisecond
	maxTickWait = time.Second
)

// untilNextDue is how long Run waits for the next tick.
func (e *Engine) untilNextDue(ctx context.Context) time.Duration {
	next, ok, err := e.store.NextDue(ctx)
	if err != nil || !ok {
		return maxTickWait
	}
	return min(max(next.Sub(e.clock.Now()), minTickWait), maxTickWait)
}

// Sweep repairs what a failure between two transactions left behind: it
// restarts the chains of triggered incidents left stopped with nothing due
// (an unacknowledge whose restart was lost), and queues again the pages
// whose queue message may be lost. Postgres, not the queue, is the record
// of what is owed.
func (e *Engine) Sweep(ctx context.Context) error {
	var errs []error
	ids, err := e.store.RepairEscalations(ctx, e.clock.Now(), repairGrace)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range ids {
		e.log.WarnContext(ctx, "escalation of a triggered incident was stopped; restarted", "incident", id)
	}
	if e.claimer != nil && e.queue != nil {
		for {
			n, err := e.claimer.RequeueStuckDeliveries(ctx, stuckAfter, tickBatch, e.queue.PublishDeliveries)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if n > 0 {
				e.log.WarnContext(ctx, "pages whose queue message may be lost queued again", "count", n)
			}
			if n < tickBatch || ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Wake makes Run tick now.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Tick takes every escalation step due now and announces the incidents
// that changed. It returns how many escalations it processed.
func (e *Engine) Tick(ctx context.Context) (int, error) {
	now := e.clock.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		errs  []error
	)
	// Each step is its own transaction; several at once keep the
	// database busy (and its commits grouped) when many fall due together.
	for range tickWorkers {
		wg.Go(func() {
			n, err := e.drain(ctx, now)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	// Pages of earlier ticks whose plan made them due now (a wait of a
	// personal plan, a fallback).
	if err := e.dispatch(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return total, fmt.Errorf("escalation tick: %w", err)
	}
	return total, nil
}

// drain takes the escalations due at now, a batch at a time, until none is
// left, and queues the pages of each batch before the next one.
func (e *Engine) drain(ctx context.Context, now time.Time) (int, error) {
	fn := func(ctx context.Context, esc storage.EscalationState) (storage.EscalationUpdate, []oncall.Delivery, error) {
		return e.process(ctx, esc, now)
	}
	var (
		total int
		errs  []error
	)
	for {
		n, changed, err := e.store.ProcessDueEscalations(ctx, now, tickBatch, fn)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
		if n > 0 {
			if err := e.dispatch(ctx, now); err != nil {
				errs = append(errs, err)
			}
		}
		for _, id := range changed {
			if e.notify == nil {
				continue
			}
			if err := e.notify.PublishIncidentChanged(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("announce incident %d: %w", id, err))
			}
		}
		if n < tickBatch || ctx.Err() != nil {
			return total, errors.Join(errs...)
		}
	}
}

// dispatch queues the deliveries due at now for the delivery workers.
func (e *Engine) dispatch(ctx context.Context, now time.Time) error {
	if e.claimer == nil || e.queue == nil {
		return nil
	}
	for {
		n, err := e.claimer.ClaimDueDeliveries(ctx, now, tickBatch, e.queue.PublishDeliveries)
		if err != nil {
			return fmt.Errorf("queue due deliveries: %w", err)
		}
		if n < tickBatch || ctx.Err() != nil {
			return nil
		}
	}
}

// chain returns the chain an incident names: a configured one, or the
// chain of a direct page (PageChain).
func (e *Engine) chain(name string) (oncall.EscalationChain, bool) {
	if c, ok := e.chains[name]; ok {
		return c, true
	}
	return PageChain(name)
}

// process decides what a due escalation does, from the incident as it is
// now (the store re-read it under lock).
func (e *Engine) process(ctx context.Context, esc storage.EscalationState, now time.Time) (
	storage.EscalationUpdate, []oncall.Delivery, error) {
	takenAt := e.clock.Now()
	e.lateness.Observe(max(takenAt.Sub(esc.NextRunAt), 0).Seconds())
	if e.onStep != nil {
		e.onStep(esc.NextRunAt, takenAt)
	}
	inc := esc.Incident
	up := storage.EscalationUpdate{State: esc.State, Step: esc.Step, Repeat: esc.Repeat, BaseRepeat: esc.BaseRepeat}
	chain, ok := e.chain(esc.Chain)
	if !ok {
		e.log.WarnContext(ctx, "escalation chain no longer configured; escalation stopped",
			"incident", inc.ID, "chain", esc.Chain)
		up.State = storage.EscalationStopped
		return up, nil, nil
	}
	if inc.Status == oncall.StatusResolved {
		up.State = storage.EscalationStopped
		return up, nil, nil
	}

	if inc.Silenced(now) && esc.State == storage.EscalationRunning {
		// Silenced: the chain waits, to go on from where it is.
		if !inc.SilencedUntil.Equal(oncall.UntilResolved) {
			up.NextRunAt = inc.SilencedUntil
		}
		return up, nil, nil
	}
	escalate := esc.Escalate
	switch esc.State {
	case storage.EscalationExhausted:
		// Due only to resolve itself.
		if inc.Status == oncall.StatusTriggered && chain.AutoResolve > 0 {
			up.Resolve = true
			up.Note = fmt.Sprintf("resolved automatically: not acknowledged %s after the last escalation",
				chain.AutoResolve)
			e.log.InfoContext(ctx, "incident resolved automatically", "incident", inc.ID, "chain", chain.Name)
		}
		return up, nil, nil
	case storage.EscalationStopped:
		// Due only when an acknowledgement times out; a triggered
		// incident here was unacknowledged without a restart.
		if inc.Status == oncall.StatusAcknowledged {
			up.Unacknowledge = true
			up.Note = fmt.Sprintf("acknowledgement timed out after %s; escalating again", chain.AckTimeout)
			inc.Status = oncall.StatusTriggered
		}
		up.Repeat++
		up.Step, up.BaseRepeat = 0, up.Repeat
		escalate = false
	case storage.EscalationRunning:
		if inc.Status == oncall.StatusAcknowledged && !escalate {
			// Acknowledged, and the acknowledgement has not stopped the
			// chain yet: stop it here.
			up.State = storage.EscalationStopped
			up.NextRunAt = e.ackWake(chain, now)
			return up, nil, nil
		}
	}

	var (
		deliveries []oncall.Delivery
		taken      []takenStep
	)
	// A run's first steps need no word of their own: their pages say
	// enough; nor does a manual escalation, which has its event.
	quiet := escalate || up.Step == 0 && up.Repeat == up.BaseRepeat
	w, due, done := runChain(chain, walk{step: up.Step, repeat: up.Repeat, baseRepeat: up.BaseRepeat}, now, escalate,
		func(s oncall.EscalationStep, index, repeat int) {
			ds := e.stepDeliveries(ctx, inc, s, index, repeat, now)
			deliveries = append(deliveries, ds...)
			taken = append(taken, takenStep{step: s, index: index, pass: repeat - up.BaseRepeat, deliveries: ds})
		})
	if !quiet && len(taken) > 0 {
		up.Events = append(up.Events, stepEvent(chain, taken))
	}
	if inc.Status == oncall.StatusAcknowledged {
		// A manual escalation of an acknowledged incident calls for help
		// now. The later rules of the plans (an SMS in 5 minutes) would
		// page people who cannot stop them: acknowledging an acknowledged
		// incident changes nothing.
		deliveries = slices.DeleteFunc(deliveries, func(d oncall.Delivery) bool { return d.DueAt.After(now) })
	}
	up.Step, up.Repeat, up.BaseRepeat = w.step, w.repeat, w.baseRepeat
	switch {
	case inc.Status == oncall.StatusAcknowledged:
		// A manual escalation of an acknowledged incident pages the next
		// step and no more.
		up.State, up.NextRunAt = storage.EscalationStopped, e.ackWake(chain, now)
	case done:
		up.State = storage.EscalationExhausted
		if chain.AutoResolve > 0 {
			up.NextRunAt = now.Add(chain.AutoResolve)
		}
	default:
		up.State, up.NextRunAt = storage.EscalationRunning, due
	}
	return up, deliveries, nil
}

// ackWake is when an acknowledgement made at now times out; zero if the
// chain has no timeout.
func (e *Engine) ackWake(chain oncall.EscalationChain, now time.Time) time.Time {
	if chain.AckTimeout <= 0 {
		return time.Time{}
	}
	return now.Add(chain.AckTimeout)
}

// stepDeliveries resolves the targets of a notify step at now and returns
// their deliveries. A schedule that cannot be read or has nobody on call
// pages nobody: that is logged, and the chain goes on to its next step
// rather than stall.
func (e *Engine) stepDeliveries(ctx context.Context, inc oncall.Incident, s oncall.EscalationStep, step, repeat int,
	now time.Time) []oncall.Delivery {
	var people []string
	switch s.Kind {
	case oncall.StepNotifySchedule:
		shifts, err := e.schedules.OnCall(ctx, s.Schedule, now)
		if err != nil {
			e.log.ErrorContext(ctx, "cannot tell who is on call; escalation step pages nobody",
				"incident", inc.ID, "schedule", s.Schedule, "step", step, "error", err)
			return nil
		}
		for _, sh := range shifts {
			people = append(people, sh.Person)
		}
		if len(people) == 0 {
			e.log.WarnContext(ctx, "nobody on call; escalation step pages nobody",
				"incident", inc.ID, "schedule", s.Schedule, "step", step)
		}
	case oncall.StepNotifyUsers:
		people = s.Users
	case oncall.StepNotifyUsergroup:
		return []oncall.Delivery{newDelivery(inc.ID, step, repeat, oncall.MentionUsergroupPrefix+s.Usergroup,
			oncall.NotifySlack, 1, now)}
	case oncall.StepNotifyChannel:
		return []oncall.Delivery{newDelivery(inc.ID, step, repeat, "!"+strings.TrimPrefix(s.Mention, "@"),
			oncall.NotifySlack, 1, now)}
	default:
		e.log.WarnContext(ctx, "unknown escalation step skipped", "incident", inc.ID, "kind", s.Kind, "step", step)
		return nil
	}
	var out []oncall.Delivery
	seen := map[string]bool{}
	for _, p := range people {
		k := strings.ToLower(p)
		if p == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, personDeliveries(inc.ID, step, repeat, p, e.people.Plan(p, inc.Severity), now)...)
	}
	return out
}

// Start starts the chain of a new incident, due now. An incident without a
// chain, or whose chain is not configured, has none (the latter is
// logged). Starting again changes nothing.
func (e *Engine) Start(ctx context.Context, inc oncall.Incident) error {
	if inc.Escalation == "" {
		return nil
	}
	if _, ok := e.chain(inc.Escalation); !ok {
		e.log.WarnContext(ctx, "incident names an escalation chain that is not configured; nobody is paged",
			"incident", inc.ID, "chain", inc.Escalation)
		return nil
	}
	started, err := e.store.StartEscalation(ctx, inc.ID, inc.Escalation, e.clock.Now())
	if err != nil {
		return err
	}
	if started {
		e.Wake()
	}
	return nil
}

// Changed follows a person's action on an incident (inc as it is after
// the action): acknowledging stops its chain and cancels the pages not
// yet sent, and schedules the acknowledgement's timeout; unacknowledging
// and reopening run the chain again from its first step; resolving stops
// it; escalating takes the next notify step at once.
func (e *Engine) Changed(ctx context.Context, inc oncall.Incident, a oncall.Action) error {
	now := e.clock.Now()
	var err error
	wake := false // the chain runs again: tick now rather than at the next second
	switch a {
	case oncall.ActionAcknowledge:
		chain, _ := e.chain(inc.Escalation)
		_, err = e.store.StopEscalation(ctx, inc.ID, e.ackWake(chain, now))
	case oncall.ActionResolve:
		_, err = e.store.StopEscalation(ctx, inc.ID, time.Time{})
	case oncall.ActionUnacknowledge, oncall.ActionReopen:
		var ok bool
		if ok, err = e.store.RestartEscalation(ctx, inc.ID, now); err == nil && !ok {
			return e.Start(ctx, inc)
		}
		wake = true
	case oncall.ActionEscalate:
		var ok bool
		if ok, err = e.store.EscalateNow(ctx, inc.ID, now); err == nil && !ok {
			return e.Start(ctx, inc)
		}
		wake = true
	default:
		return fmt.Errorf("escalation of incident %d: unknown action %q", inc.ID, a)
	}
	if err != nil {
		return err
	}
	if wake {
		e.Wake()
	}
	return nil
}
