package escalation_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/storage"
)

// silenceChain pages bob, waits ten minutes, then mentions @here.
var silenceChain = oncall.EscalationChain{Name: "quiet", Steps: []oncall.EscalationStep{
	{Kind: oncall.StepNotifyUsers, Users: []string{"UBOB"}},
	{Kind: oncall.StepWait, Wait: 10 * time.Minute},
	{Kind: oncall.StepNotifyChannel, Mention: "here"},
}}

// tickAt moves the clock to t0+at, ticks, and returns the keys (without
// the incident) of the deliveries of the incident planned since the last
// call, and how many escalations the tick processed.
func (h *engineHarness) tickAt(t *testing.T, incidentID int64, at time.Duration, seen map[int64]bool) ([]string, int) {
	t.Helper()
	h.clock.Set(t0.Add(at))
	n, err := h.engine.Tick(t.Context())
	if err != nil {
		t.Fatalf("tick at %s: %v", at, err)
	}
	ds, err := h.db.Deliveries(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range ds {
		if !seen[d.ID] {
			seen[d.ID] = true
			keys = append(keys, describe(d))
		}
	}
	slices.Sort(keys)
	return keys, n
}

func (h *engineHarness) escalation(t *testing.T, incidentID int64) storage.EscalationState {
	t.Helper()
	esc, err := h.db.Escalation(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	return esc
}

func (h *engineHarness) silence(t *testing.T, incidentID int64, until time.Time) {
	t.Helper()
	if _, changed, err := h.db.Silence(t.Context(), incidentID, until, oncall.SlackActor("UALICE"), ""); err != nil || !changed {
		t.Fatalf("silence: changed %v, %v", changed, err)
	}
}

// TestEngineSilencedChainGoesOn: a chain silenced while it waits for its
// next step takes that step when the silence ends, not its first again.
func TestEngineSilencedChainGoesOn(t *testing.T) {
	t.Parallel()
	db, _ := newEngineDB(t)
	h := newEngine(t, db, &fakeClock{now: t0}, silenceChain)
	inc := h.open(t, "g", silenceChain.Name, oncall.SeverityWarning)
	seen := map[int64]bool{}
	if got, _ := h.tickAt(t, inc.ID, 0, seen); !slices.Equal(got, []string{"0:0:UBOB:slack@0s"}) {
		t.Fatalf("first tick planned %q", got)
	}

	until := t0.Add(30 * time.Minute)
	h.clock.Set(t0.Add(time.Minute))
	h.silence(t, inc.ID, until)
	if got, _ := h.tickAt(t, inc.ID, 10*time.Minute, seen); len(got) != 0 {
		t.Errorf("tick when the next step was due, silenced: planned %q, want nothing", got)
	}
	if esc := h.escalation(t, inc.ID); esc.State != storage.EscalationRunning || esc.Step != 2 || esc.Repeat != 0 ||
		!esc.NextRunAt.Equal(until) {
		t.Errorf("silenced escalation: %s at step %d repeat %d due %s; want running at step 2 repeat 0 due %s",
			esc.State, esc.Step, esc.Repeat, esc.NextRunAt, until)
	}
	if got, _ := h.tickAt(t, inc.ID, 30*time.Minute, seen); !slices.Equal(got, []string{"2:0:!here:slack@30m0s"}) {
		t.Errorf("tick when the silence ends: planned %q, want the next step, @here", got)
	}
	if esc := h.escalation(t, inc.ID); esc.State != storage.EscalationExhausted {
		t.Errorf("after its last step: %s, want exhausted", esc.State)
	}
}

// TestEngineSilencedRunWaits: a chain that falls due while its incident
// is silenced (unacknowledged meanwhile) plans nothing and waits for the
// end of the silence, then goes on from where it was.
func TestEngineSilencedRunWaits(t *testing.T) {
	t.Parallel()
	db, _ := newEngineDB(t)
	cases := []struct {
		name  string
		until time.Time
		due   time.Time // the chain's next run while silenced; zero: none
	}{
		{"for a while", t0.Add(30 * time.Minute), t0.Add(30 * time.Minute)},
		{"until resolved", oncall.UntilResolved, time.Time{}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newEngine(t, db, &fakeClock{now: t0}, silenceChain)
			inc := h.open(t, string(rune('a'+i)), silenceChain.Name, oncall.SeverityWarning)
			seen := map[int64]bool{}
			h.tickAt(t, inc.ID, 0, seen)
			h.clock.Set(t0.Add(time.Minute))
			h.act(t, inc.ID, oncall.ActionAcknowledge)
			h.silence(t, inc.ID, c.until)
			h.clock.Set(t0.Add(2 * time.Minute))
			h.act(t, inc.ID, oncall.ActionUnacknowledge) // the chain runs again from its first step, due now

			got, n := h.tickAt(t, inc.ID, 2*time.Minute, seen)
			if n != 1 || len(got) != 0 {
				t.Errorf("tick of the silenced run: processed %d, planned %q; want 1 processed, nothing planned", n, got)
			}
			esc := h.escalation(t, inc.ID)
			if esc.State != storage.EscalationRunning || esc.Step != 0 || esc.Repeat != 1 || !esc.NextRunAt.Equal(c.due) {
				t.Errorf("silenced run: %s at step %d repeat %d due %s; want running at step 0 repeat 1 due %s",
					esc.State, esc.Step, esc.Repeat, esc.NextRunAt, c.due)
			}
			if got, _ := h.tickAt(t, inc.ID, 29*time.Minute, seen); len(got) != 0 {
				t.Errorf("tick before the end of the silence planned %q", got)
			}
			if c.until.Equal(oncall.UntilResolved) {
				if _, changed, err := db.Unsilence(t.Context(), inc.ID, oncall.SlackActor("UALICE"), ""); err != nil || !changed {
					t.Fatalf("unsilence: changed %v, %v", changed, err)
				}
				// Unsilence makes the chain due at the database's now.
				h.clock.Set(time.Now().Add(time.Minute))
				if _, err := h.engine.Tick(t.Context()); err != nil {
					t.Fatal(err)
				}
				ds, err := db.Deliveries(t.Context(), inc.ID)
				if err != nil {
					t.Fatal(err)
				}
				if last := ds[len(ds)-1]; last.Step != 0 || last.Repeat != 1 || last.Person != "UBOB" || seen[last.ID] {
					t.Errorf("after unsilence: last delivery %s, want bob's of step 0, repeat 1", last.Key)
				}
				return
			}
			if got, _ := h.tickAt(t, inc.ID, 30*time.Minute, seen); !slices.Equal(got, []string{"0:1:UBOB:slack@30m0s"}) {
				t.Errorf("tick when the silence ends: planned %q, want the first step of the new run", got)
			}
		})
	}
}

// wakeCounter is an Escalator that counts its wake-ups.
type wakeCounter struct {
	mu    sync.Mutex
	wakes int
}

func (w *wakeCounter) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakes++
}

func (w *wakeCounter) Changed(context.Context, oncall.Incident, oncall.Action) error { return nil }

func (w *wakeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wakes
}

// actionCount reads oncall_incident_actions_total{action, outcome}.
func actionCount(t *testing.T, reg *prometheus.Registry, action, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "oncall_incident_actions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["action"] == action && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestServiceSilence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, _ := newEngineDB(t)
	notifier, esc, reg := &recordingNotifier{}, &wakeCounter{}, prometheus.NewRegistry()
	svc := escalation.NewService(db, notifier, esc, slog.New(slog.DiscardHandler), reg)
	if err := svc.Process(ctx, batch("b1", "disk", oncall.AlertFiring)); err != nil {
		t.Fatal(err)
	}
	o, err := db.BatchOutcome(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	id, alice := o.IncidentID, oncall.SlackActor("UALICE")
	wakes, announced := esc.count(), notifier.count(id)

	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	steps := []struct {
		name   string
		until  time.Time // zero: unsilence
		key    string
		want   time.Time // SilencedUntil after it
		wake   bool
		metric [2]string // action, outcome counted
	}{
		{"silence", until, "click-1", until, true, [2]string{"silence", "changed"}},
		{"the same click again", until.Add(time.Hour), "click-1", until, false, [2]string{"silence", "unchanged"}},
		{"unsilence", time.Time{}, "click-2", time.Time{}, true, [2]string{"unsilence", "changed"}},
		{"unsilence again", time.Time{}, "click-3", time.Time{}, false, [2]string{"unsilence", "unchanged"}},
	}
	for _, s := range steps {
		before := actionCount(t, reg, s.metric[0], s.metric[1])
		inc, err := svc.Silence(ctx, id, s.until, alice, s.key)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !inc.SilencedUntil.Equal(s.want) {
			t.Errorf("%s: silenced until %s, want %s", s.name, inc.SilencedUntil, s.want)
		}
		// Announced even when nothing changed, as Act does.
		announced++
		if n := notifier.count(id); n != announced {
			t.Errorf("%s: announced %d times in all, want %d", s.name, n, announced)
		}
		if s.wake {
			wakes++
		}
		if n := esc.count(); n != wakes {
			t.Errorf("%s: engine woken %d times in all, want %d", s.name, n, wakes)
		}
		if got := actionCount(t, reg, s.metric[0], s.metric[1]); got != before+1 {
			t.Errorf("%s: oncall_incident_actions_total%v went from %v to %v", s.name, s.metric, before, got)
		}
	}
	kinds := map[oncall.EventKind]int{}
	evs, err := db.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		kinds[ev.Kind]++
	}
	if kinds[oncall.EventSilenced] != 1 || kinds[oncall.EventUnsilenced] != 1 {
		t.Errorf("events %v, want one silenced and one unsilenced", kinds)
	}

	if _, err := svc.Silence(ctx, 1<<40, until, alice, ""); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("silence of a missing incident: %v, want ErrNotFound", err)
	}
	if got := actionCount(t, reg, "silence", "error"); got != 1 {
		t.Errorf("oncall_incident_actions_total{silence, error} = %v, want 1", got)
	}
}
