package escalation_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/storage"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// rota is a schedule source: the people on call for each schedule, all the
// time. It counts the questions asked.
type rota struct {
	onCall map[string][]string
	asked  atomic.Int64
}

func (r *rota) OnCall(_ context.Context, schedule string, at time.Time) ([]oncall.Shift, error) {
	r.asked.Add(1)
	people, ok := r.onCall[schedule]
	if !ok {
		return nil, fmt.Errorf("schedule %q: %w", schedule, oncall.ErrNotFound)
	}
	var out []oncall.Shift
	for _, p := range people {
		out = append(out, oncall.Shift{Schedule: schedule, Person: p, Start: at.Add(-time.Hour), End: at.Add(time.Hour)})
	}
	return out, nil
}

// countingPeople counts the plans asked for: one per person per step
// fired.
type countingPeople struct {
	plans *escalation.Plans
	asked atomic.Int64
}

func (p *countingPeople) Plan(person string, sev oncall.Severity) []oncall.NotifyRule {
	p.asked.Add(1)
	return p.plans.Plan(person, sev)
}

func rule(ch string) config.NotifyRule { return config.NotifyRule{Channel: ch} }
func pause(d time.Duration) config.NotifyRule {
	return config.NotifyRule{Wait: config.Duration(d)}
}

// testUsers: alice has a phone and a full plan, carol has rules but no
// phone, bob has none.
var testConfig = &config.Config{Users: []config.User{
	{Slack: "UALICE", Phone: "+4915100000001",
		Notify:    []config.NotifyRule{rule("slack"), pause(5 * time.Minute), rule("sms"), pause(5 * time.Minute), rule("call")},
		Important: []config.NotifyRule{rule("call"), pause(2 * time.Minute), rule("sms"), pause(time.Minute), rule("call")}},
	{Slack: "UCAROL", Notify: []config.NotifyRule{rule("sms"), pause(time.Minute), rule("slack")}},
}}

type engineHarness struct {
	db     *storage.DB
	clock  *fakeClock
	engine *escalation.Engine
	people *countingPeople
	rota   *rota
}

func openDB(t *testing.T, url string) *storage.DB {
	t.Helper()
	db, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func newEngineDB(t *testing.T) (*storage.DB, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db := openDB(t, url)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	hook := oncall.Integration{Name: "hook", Kind: "webhook", Token: "hook-token-0123456789", Channel: "C0HOOK"}
	if err := db.SyncIntegrations(t.Context(), []oncall.Integration{hook}); err != nil {
		t.Fatal(err)
	}
	return db, url
}

func newEngine(t *testing.T, db *storage.DB, clock *fakeClock, chains ...oncall.EscalationChain) *engineHarness {
	t.Helper()
	h := &engineHarness{
		db: db, clock: clock,
		people: &countingPeople{plans: escalation.NewPlans(testConfig)},
		rota:   &rota{onCall: map[string][]string{"primary": {"UBOB"}, "pair": {"UBOB", "UALICE", "ubob"}}},
	}
	byName := map[string]oncall.EscalationChain{}
	for _, c := range chains {
		byName[c.Name] = c
	}
	e, err := escalation.NewEngine(escalation.EngineConfig{
		Store: db, Chains: byName, Schedules: h.rota, People: h.people, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.engine = e
	return h
}

// open opens an incident on chain and starts its escalation.
func (h *engineHarness) open(t *testing.T, group, chain string, sev oncall.Severity) oncall.Incident {
	t.Helper()
	b := batch("b-"+group, group, oncall.AlertFiring)
	b.Escalation, b.Severity, b.ReceivedAt = chain, sev, h.clock.Now() // received now: the chain is due at once
	res, err := h.db.RecordBatch(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := h.db.Incident(t.Context(), res.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.engine.Start(t.Context(), inc); err != nil {
		t.Fatal(err)
	}
	return inc
}

// act applies a person's action and tells the engine, as the service will.
func (h *engineHarness) act(t *testing.T, id int64, a oncall.Action) {
	t.Helper()
	inc, changed, err := h.db.Transition(t.Context(), id, a, oncall.SlackActor("UALICE"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatalf("%s changed nothing", a)
	}
	if err := h.engine.Changed(t.Context(), inc, a); err != nil {
		t.Fatal(err)
	}
}

// describe writes a delivery as "step:repeat:person:channel@offset", its
// key without the incident and its due time from t0.
func describe(d oncall.Delivery) string {
	_, key, _ := strings.Cut(d.Key, ":")
	return fmt.Sprintf("%s@%s", key, d.DueAt.Sub(t0))
}

func TestEngineScenarios(t *testing.T) {
	t.Parallel()
	const (
		tick     = "tick"
		ack      = oncall.ActionAcknowledge
		unack    = oncall.ActionUnacknowledge
		resolve  = oncall.ActionResolve
		escalate = oncall.ActionEscalate
	)
	users := func(u ...string) oncall.EscalationStep {
		return oncall.EscalationStep{Kind: oncall.StepNotifyUsers, Users: u}
	}
	wait := func(d time.Duration) oncall.EscalationStep {
		return oncall.EscalationStep{Kind: oncall.StepWait, Wait: d}
	}
	type step struct {
		at        time.Duration // clock, from t0
		do        string        // "tick" or an action (followed by a tick)
		new       []string      // deliveries created, by describe
		cancelled int           // deliveries cancelled by this step
		status    oncall.IncidentStatus
		state     storage.EscalationStateKind
	}
	cases := []struct {
		name     string
		chain    oncall.EscalationChain
		severity oncall.Severity
		steps    []step
	}{
		{
			name: "each step fires at its time and not before",
			chain: oncall.EscalationChain{Steps: []oncall.EscalationStep{
				users("UBOB"), wait(5 * time.Minute),
				{Kind: oncall.StepNotifySchedule, Schedule: "pair"}, wait(10 * time.Minute),
				{Kind: oncall.StepNotifyUsergroup, Usergroup: "S0OPS"},
				{Kind: oncall.StepNotifyChannel, Mention: "here"},
			}},
			steps: []step{
				{at: 0, do: tick, new: []string{"0:0:UBOB:slack@0s"}, state: storage.EscalationRunning},
				{at: 4*time.Minute + 59*time.Second, do: tick, state: storage.EscalationRunning},
				{at: 5 * time.Minute, do: tick, new: []string{
					"2:0:UBOB:slack@5m0s",
					"2:0:UALICE:slack@5m0s", "2:0:UALICE:sms@10m0s", "2:0:UALICE:call@15m0s",
				}, state: storage.EscalationRunning},
				{at: 14 * time.Minute, do: tick, state: storage.EscalationRunning},
				{at: 15 * time.Minute, do: tick, new: []string{
					"4:0:!subteam^S0OPS:slack@15m0s", "5:0:!here:slack@15m0s",
				}, state: storage.EscalationExhausted},
				{at: 60 * time.Minute, do: tick, status: oncall.StatusTriggered, state: storage.EscalationExhausted},
			},
		},
		{
			name:     "critical incidents follow the important plan; no phone means no sms",
			chain:    oncall.EscalationChain{Steps: []oncall.EscalationStep{users("UALICE", "UCAROL", "UALICE")}},
			severity: oncall.SeverityCritical,
			steps: []step{
				{at: 0, do: tick, new: []string{
					"0:0:UALICE:call@0s", "0:0:UALICE:sms@2m0s", "0:0:UALICE:call:2@3m0s",
					"0:0:UCAROL:slack@1m0s",
				}, state: storage.EscalationExhausted},
			},
		},
		{
			name: "ack stops and cancels, unack restarts as a new repeat",
			chain: oncall.EscalationChain{Steps: []oncall.EscalationStep{
				users("UALICE"), wait(20 * time.Minute), users("UBOB"),
			}},
			steps: []step{
				{at: 0, do: tick, new: []string{"0:0:UALICE:slack@0s", "0:0:UALICE:sms@5m0s", "0:0:UALICE:call@10m0s"}},
				{at: 6 * time.Minute, do: string(ack), cancelled: 3, status: oncall.StatusAcknowledged,
					state: storage.EscalationStopped},
				{at: 30 * time.Minute, do: tick, status: oncall.StatusAcknowledged, state: storage.EscalationStopped},
				{at: 31 * time.Minute, do: string(unack), new: []string{
					"0:1:UALICE:slack@31m0s", "0:1:UALICE:sms@36m0s", "0:1:UALICE:call@41m0s",
				}, status: oncall.StatusTriggered, state: storage.EscalationRunning},
				{at: 51 * time.Minute, do: tick, new: []string{"2:1:UBOB:slack@51m0s"},
					state: storage.EscalationExhausted},
			},
		},
		{
			name: "an acknowledgement that times out restarts the chain",
			chain: oncall.EscalationChain{AckTimeout: 30 * time.Minute, Steps: []oncall.EscalationStep{
				users("UBOB"), wait(time.Hour),
			}},
			steps: []step{
				{at: 0, do: tick, new: []string{"0:0:UBOB:slack@0s"}},
				{at: time.Minute, do: string(ack), cancelled: 1, status: oncall.StatusAcknowledged,
					state: storage.EscalationStopped},
				{at: 30 * time.Minute, do: tick, status: oncall.StatusAcknowledged, state: storage.EscalationStopped},
				{at: 31 * time.Minute, do: tick, new: []string{"0:1:UBOB:slack@31m0s"},
					status: oncall.StatusTriggered, state: storage.EscalationRunning},
			},
		},
		{
			name: "resolve stops everything",
			chain: oncall.EscalationChain{Repeat: 5, Steps: []oncall.EscalationStep{
				users("UALICE"), wait(time.Minute),
			}},
			steps: []step{
				{at: 0, do: tick, new: []string{"0:0:UALICE:slack@0s", "0:0:UALICE:sms@5m0s", "0:0:UALICE:call@10m0s"}},
				{at: 30 * time.Second, do: string(resolve), cancelled: 3, status: oncall.StatusResolved,
					state: storage.EscalationStopped},
				{at: time.Hour, do: tick, status: oncall.StatusResolved, state: storage.EscalationStopped},
			},
		},
		{
			name: "repeats N times, then stops and resolves itself",
			chain: oncall.EscalationChain{Repeat: 2, AutoResolve: 30 * time.Minute, Steps: []oncall.EscalationStep{
				users("UBOB"), wait(10 * time.Minute),
			}},
			steps: []step{
				{at: 0, do: tick, new: []string{"0:0:UBOB:slack@0s"}},
				{at: 10 * time.Minute, do: tick, new: []string{"0:1:UBOB:slack@10m0s"}},
				{at: 20 * time.Minute, do: tick, new: []string{"0:2:UBOB:slack@20m0s"}},
				{at: 30 * time.Minute, do: tick, state: storage.EscalationExhausted, status: oncall.StatusTriggered},
				{at: 59 * time.Minute, do: tick, state: storage.EscalationExhausted, status: oncall.StatusTriggered},
				{at: 60 * time.Minute, do: tick, cancelled: 3, state: storage.EscalationExhausted,
					status: oncall.StatusResolved},
			},
		},
		{
			name: "manual escalation takes the next notify step at once",
			chain: oncall.EscalationChain{Steps: []oncall.EscalationStep{
				users("UBOB"), wait(30 * time.Minute), wait(time.Minute), users("UCAROL"), wait(30 * time.Minute),
				{Kind: oncall.StepNotifyChannel, Mention: "channel"},
			}},
			steps: []step{
				{at: 0, do: tick, new: []string{"0:0:UBOB:slack@0s"}},
				{at: 2 * time.Minute, do: string(escalate), new: []string{"3:0:UCAROL:slack@3m0s"},
					state: storage.EscalationRunning},
				{at: 31 * time.Minute, do: tick, state: storage.EscalationRunning},
				{at: 32 * time.Minute, do: tick, new: []string{"5:0:!channel:slack@32m0s"},
					state: storage.EscalationExhausted},
			},
		},
	}
	db, _ := newEngineDB(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.chain.Name = fmt.Sprintf("chain%d", i)
			h := newEngine(t, db, &fakeClock{now: t0}, c.chain)
			sev := cmpOr(c.severity, oncall.SeverityWarning)
			inc := h.open(t, fmt.Sprintf("group%d", i), c.chain.Name, sev)
			seen := map[int64]oncall.DeliveryStatus{}
			for _, s := range c.steps {
				h.clock.Set(t0.Add(s.at))
				if s.do != tick {
					h.act(t, inc.ID, oncall.Action(s.do))
				}
				if _, err := h.engine.Tick(t.Context()); err != nil {
					t.Fatalf("at %s: %v", s.at, err)
				}
				ds, err := db.Deliveries(t.Context(), inc.ID)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				cancelled := 0
				for _, d := range ds {
					before, old := seen[d.ID]
					if !old {
						got = append(got, describe(d))
					}
					if d.Status == oncall.DeliveryCancelled && before != oncall.DeliveryCancelled {
						cancelled++
					}
					seen[d.ID] = d.Status
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(s.new))
				if !slices.Equal(got, want) {
					t.Errorf("at %s after %s: new deliveries\n got %q\nwant %q", s.at, s.do, got, want)
				}
				if cancelled != s.cancelled {
					t.Errorf("at %s after %s: %d deliveries cancelled, want %d", s.at, s.do, cancelled, s.cancelled)
				}
				if s.status != "" {
					cur, err := db.Incident(t.Context(), inc.ID)
					if err != nil {
						t.Fatal(err)
					}
					if cur.Status != s.status {
						t.Errorf("at %s after %s: incident %s, want %s", s.at, s.do, cur.Status, s.status)
					}
				}
				if s.state != "" {
					esc, err := db.Escalation(t.Context(), inc.ID)
					if err != nil {
						t.Fatal(err)
					}
					if esc.State != s.state {
						t.Errorf("at %s after %s: escalation %s, want %s", s.at, s.do, esc.State, s.state)
					}
				}
			}
		})
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// TestTwoEnginesFireEachStepOnce runs two engines, each with its own
// connection pool, on one database with 1,000 incidents, and moves the
// clock through the chain: every step fires once, none twice.
func TestTwoEnginesFireEachStepOnce(t *testing.T) {
	t.Parallel()
	const incidents = 1000
	chain := oncall.EscalationChain{Name: "default", Repeat: 1, Steps: []oncall.EscalationStep{
		{Kind: oncall.StepNotifyUsers, Users: []string{"UCAROL"}},
		{Kind: oncall.StepWait, Wait: time.Minute},
		{Kind: oncall.StepNotifySchedule, Schedule: "primary"},
		{Kind: oncall.StepWait, Wait: time.Minute},
		{Kind: oncall.StepNotifyChannel, Mention: "here"},
	}}
	db, url := newEngineDB(t)
	clock := &fakeClock{now: t0}
	a := newEngine(t, db, clock, chain)
	b := newEngine(t, openDB(t, url), clock, chain)
	for i := range incidents {
		a.open(t, fmt.Sprintf("g%d", i), chain.Name, oncall.SeverityWarning)
	}

	// Passes: carol at 0; bob at 1m; @here at 2m and the second pass's
	// carol; bob at 3m; @here at 4m.
	for minute := range 5 {
		clock.Set(t0.Add(time.Duration(minute) * time.Minute))
		var wg sync.WaitGroup
		for _, h := range []*engineHarness{a, b} {
			wg.Go(func() {
				for {
					n, err := h.engine.Tick(t.Context())
					if err != nil {
						t.Error(err)
						return
					}
					if n == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
	}

	plans := a.people.asked.Load() + b.people.asked.Load()
	if want := int64(4 * incidents); plans != want {
		t.Errorf("people paged %d times, want %d (2 steps x 2 passes x %d incidents)", plans, want, incidents)
	}
	asked := a.rota.asked.Load() + b.rota.asked.Load()
	if want := int64(2 * incidents); asked != want {
		t.Errorf("schedule asked %d times, want %d", asked, want)
	}
	var total int
	for id := int64(1); id <= incidents; id++ {
		ds, err := db.Deliveries(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		total += len(ds)
		esc, err := db.Escalation(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if esc.State != storage.EscalationExhausted || esc.Repeat != 1 {
			t.Fatalf("incident %d: escalation %s at repeat %d, want exhausted at repeat 1", id, esc.State, esc.Repeat)
		}
	}
	// carol: slack (she has no phone for her sms); bob: slack; @here;
	// two passes.
	if want := incidents * 2 * 3; total != want {
		t.Errorf("%d deliveries, want %d", total, want)
	}
}
