package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/storage"
)

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// sliceStore is an OverrideStore in memory.
type sliceStore struct {
	mu        sync.Mutex
	overrides []oncall.Override
	calls     int
	err       error // returned instead of the overrides when set
}

func (s *sliceStore) Overrides(_ context.Context, schedule string, from, to time.Time) ([]oncall.Override, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	var out []oncall.Override
	for _, o := range s.overrides {
		if o.Schedule == schedule && o.Start.Before(to) && o.End.After(from) {
			out = append(out, o)
		}
	}
	return out, nil
}

// add stores an override from srcTestNow+from to srcTestNow+to; IDs
// count up from 1.
func (s *sliceStore) add(schedule, person string, from, to time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overrides = append(s.overrides, oncall.Override{
		ID: int64(len(s.overrides) + 1), Schedule: schedule, Person: person,
		Start: srcTestNow.Add(from), End: srcTestNow.Add(to), CreatedBy: oncall.ActorSystem,
	})
}

func (s *sliceStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *sliceStore) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// primaryDefinition is a schedule with the base calendar of testdata
// (alice and bob take turns weekly, alice has the week of srcTestNow) and
// an overrides calendar (carol from 12:00 to 18:00 on srcTestNow's day).
func primaryDefinition() Definition {
	return Definition{
		Name:          "primary",
		File:          filepath.Join("testdata", "service", "base.ics"),
		OverridesICal: filepath.Join("testdata", "service", "overrides.ics"),
	}
}

// rotaDefinition is a rotation-only schedule: xavier and yuki swap daily at
// 09:00 Berlin time, yuki from the day of srcTestNow.
func rotaDefinition(t *testing.T) Definition {
	t.Helper()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return Definition{
		Name:     "rota",
		Location: berlin,
		Rotations: []Rotation{{
			Users:    []string{"xavier@example.com", "yuki@example.com"},
			Shift:    24 * time.Hour,
			Handoff:  time.Date(2026, 3, 3, 9, 0, 0, 0, berlin),
			Location: berlin,
		}},
	}
}

func newStoreService(t *testing.T, store OverrideStore, defs ...Definition) *Service {
	t.Helper()
	s := NewService(defs, store, nil, discardLog())
	s.now = func() time.Time { return srcTestNow }
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServiceLayers(t *testing.T) {
	store := &sliceStore{}
	store.add("primary", "dave@example.com", 4*time.Hour, 6*time.Hour)       // 14:00-16:00
	store.add("primary", "erin@example.com", 5*time.Hour, 7*time.Hour)       // 15:00-17:00, later: beats dave
	store.add("rota", "frank@example.com", -2*time.Hour, -1*time.Hour)       // 08:00-09:00 UTC
	store.add("secondary", "zoe@example.com", -240*time.Hour, 240*time.Hour) // another schedule
	s := newStoreService(t, store, primaryDefinition(), rotaDefinition(t))

	day := func(h, m int) time.Time { return time.Date(2026, 3, 4, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		schedule string
		at       time.Time
		want     []string
	}{
		{"base calendar", "primary", day(10, 0), []string{"alice@example.com/calendar"}},
		{"overrides calendar beats the base", "primary", day(12, 0), []string{"carol@example.com/overrides"}},
		{"stored override beats the overrides calendar", "primary", day(14, 30), []string{"dave@example.com/override"}},
		{"later stored override beats an earlier one", "primary", day(15, 30), []string{"erin@example.com/override"}},
		{"back to the overrides calendar", "primary", day(17, 0), []string{"carol@example.com/overrides"}},
		{"back to the base", "primary", day(18, 0), []string{"alice@example.com/calendar"}},
		{"next week of the base", "primary", time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC), []string{"bob@example.com/calendar"}},
		{"last week of the base", "primary", time.Date(2026, 3, 2, 7, 59, 0, 0, time.UTC), []string{"bob@example.com/calendar"}},
		{"far future, outside the cached window", "primary", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), []string{"bob@example.com/calendar"}},
		{"rotation", "rota", day(10, 0), []string{"yuki@example.com/rotation"}},
		{"rotation the day before", "rota", day(7, 59), []string{"xavier@example.com/rotation"}},
		{"stored override of a rotation", "rota", day(8, 30), []string{"frank@example.com/override"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shifts, err := s.OnCall(t.Context(), tt.schedule, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if got := shiftNames(shifts); !slices.Equal(got, tt.want) {
				t.Errorf("OnCall(%s, %s) = %v, want %v", tt.schedule, tt.at.Format(time.RFC3339), got, tt.want)
			}
			for _, sh := range shifts {
				if sh.Schedule != tt.schedule {
					t.Errorf("shift %+v has Schedule %q, want %q", sh, sh.Schedule, tt.schedule)
				}
			}
		})
	}

	shifts, err := s.Shifts(t.Context(), "primary", day(0, 0), day(24, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range shifts {
		shifts[i].Start, shifts[i].End = shifts[i].Start.UTC(), shifts[i].End.UTC()
	}
	got, err := json.MarshalIndent(shifts, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "service", "primary-shifts.json"), append(got, '\n'))

	if got, want := s.Schedules(), []string{"primary", "rota"}; !slices.Equal(got, want) {
		t.Errorf("Schedules() = %v, want %v", got, want)
	}
}

func TestServiceUnknownSchedule(t *testing.T) {
	s := newStoreService(t, &sliceStore{}, primaryDefinition())
	if _, err := s.OnCall(t.Context(), "nope", srcTestNow); !errors.Is(err, ErrUnknownSchedule) {
		t.Errorf("OnCall of an unknown schedule: %v, want ErrUnknownSchedule", err)
	}
	if _, err := s.Shifts(t.Context(), "nope", srcTestNow, srcTestNow.Add(time.Hour)); !errors.Is(err, ErrUnknownSchedule) {
		t.Errorf("Shifts of an unknown schedule: %v, want ErrUnknownSchedule", err)
	}
	if st := s.Status("nope"); st != (SourceStatus{}) {
		t.Errorf("Status of an unknown schedule = %+v, want zero", st)
	}
	s.OverridesChanged("nope") // no effect, no panic
}

func TestServiceStatusOfBothCalendars(t *testing.T) {
	s := newStoreService(t, nil, primaryDefinition())
	st := s.Status("primary")
	if !st.Loaded || st.Events != 2 || st.File != primaryDefinition().File {
		t.Errorf("base status %+v, want loaded with 2 events from %s", st, primaryDefinition().File)
	}
	if st.Overrides == nil || !st.Overrides.Loaded || st.Overrides.Events != 1 {
		t.Errorf("overrides status %+v, want loaded with 1 event", st.Overrides)
	}
	rota := NewService([]Definition{rotaDefinition(t)}, nil, nil, discardLog())
	if st := rota.Status("rota"); st != (SourceStatus{}) {
		t.Errorf("status of a rotation-only schedule = %+v, want zero", st)
	}
}

func TestOverridesChangedTakesEffectAtOnce(t *testing.T) {
	store := &sliceStore{}
	s := newStoreService(t, store, primaryDefinition())
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice@example.com/calendar"}) {
		t.Fatalf("on call %v before the override, want alice", got)
	}
	calls := store.callCount()

	store.add("primary", "bob@example.com", -time.Hour, time.Hour)
	for range 1000 {
		if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice@example.com/calendar"}) {
			t.Fatalf("on call %v before OverridesChanged, want alice from the cached index", got)
		}
	}
	if n := store.callCount() - calls; n != 0 {
		t.Errorf("1000 answers read the store %d times, want 0", n)
	}

	s.OverridesChanged("primary")
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"bob@example.com/override"}) {
		t.Errorf("on call %v after OverridesChanged, want bob's override", got)
	}
	if n := store.callCount() - calls; n != 1 {
		t.Errorf("the store was read %d times after OverridesChanged, want 1", n)
	}
}

func TestOverrideStoreFailure(t *testing.T) {
	store := &sliceStore{}
	store.fail(errors.New("database is down"))
	s := NewService([]Definition{primaryDefinition()}, store, nil, discardLog())
	s.now = func() time.Time { return srcTestNow }
	if err := s.Load(t.Context()); err == nil {
		t.Error("Load with a failing store succeeded, want its error")
	}
	if _, err := s.OnCall(t.Context(), "primary", srcTestNow); err == nil {
		t.Error("OnCall with a failing store and nothing cached succeeded, want an error")
	}

	store.fail(nil)
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	store.add("primary", "bob@example.com", -time.Hour, time.Hour)
	store.fail(errors.New("database is down again"))
	s.OverridesChanged("primary")
	// The previous index answers rather than nobody.
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice@example.com/calendar"}) {
		t.Errorf("on call %v with the store down, want alice from the previous index", got)
	}
	store.fail(nil)
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"bob@example.com/override"}) {
		t.Errorf("on call %v once the store is back, want bob's override", got)
	}
}

func TestSvcOverrideLayer(t *testing.T) {
	at := func(h int) time.Time { return srcTestNow.Add(time.Duration(h) * time.Hour) }
	// Out of ID order on purpose: the store sorts by start.
	overrides := []oncall.Override{
		{ID: 3, Person: "carol", Start: at(2), End: at(3)},
		{ID: 1, Person: "alice", Start: at(0), End: at(4)},
		{ID: 2, Person: "bob", Start: at(1), End: at(5)},
	}
	want := []oncall.Shift{
		{Person: "alice", Start: at(0), End: at(1), Source: SourceOverride},
		{Person: "bob", Start: at(1), End: at(2), Source: SourceOverride},
		{Person: "carol", Start: at(2), End: at(3), Source: SourceOverride},
		{Person: "bob", Start: at(3), End: at(5), Source: SourceOverride},
	}
	if got := svcOverrideLayer(overrides); !slices.Equal(got, want) {
		t.Errorf("svcOverrideLayer =\n%v\nwant\n%v", got, want)
	}
}

func TestServiceConcurrentUse(t *testing.T) {
	store := &sliceStore{}
	s := newStoreService(t, store, primaryDefinition())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				shifts, err := s.OnCall(t.Context(), "primary", srcTestNow.Add(time.Duration(i)*time.Minute))
				if err != nil || len(shifts) == 0 {
					t.Errorf("OnCall: %v, %v; want someone on call", shifts, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := s.Load(t.Context()); err != nil {
				t.Error(err)
			}
			s.OverridesChanged("primary")
			_ = s.Status("primary")
		}
	})
	wg.Wait()
}

func TestRunRefreshesUntilDone(t *testing.T) {
	srv, url := startICS(t, dayOf("alice"), `"v1"`)
	s := NewService([]Definition{{Name: "primary", ICal: url}}, nil, nil, discardLog())
	s.now = func() time.Time { return srcTestNow }
	s.refreshSpec = "@every 1s"

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// The first load, then a refresh on the cron schedule: a conditional one.
	deadline := time.Now().Add(time.Minute)
	for len(srv.requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after its context was done, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context was done")
	}
	reqs := srv.requests()
	if len(reqs) < 2 {
		t.Fatalf("%d requests while Run ran, want the first load and a refresh", len(reqs))
	}
	if got := reqs[1].Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("refresh sent If-None-Match %q, want \"v1\"", got)
	}
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice/calendar"}) {
		t.Errorf("on call %v after Run, want alice", got)
	}
}

// The storage package's DB is the store the bot uses.
var _ OverrideStore = (*storage.DB)(nil)

func TestServiceWithStoredOverrides(t *testing.T) {
	ctx := t.Context()
	cluster, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Error(err)
		}
	})
	url, err := cluster.CreateDatabase(ctx, "schedule_overrides")
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := newStoreService(t, db, primaryDefinition())

	swap, err := db.AddOverride(ctx, oncall.Override{
		Schedule: "primary", Person: "bob@example.com",
		Start: srcTestNow.Add(-time.Hour), End: srcTestNow.Add(time.Hour),
		CreatedBy: oncall.SlackActor("U0ALICE"), Reason: "swap",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.OverridesChanged("primary")
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"bob@example.com/override"}) {
		t.Errorf("on call %v after the swap, want bob's override", got)
	}

	if err := db.CancelOverride(ctx, swap.ID, oncall.SlackActor("U0ALICE")); err != nil {
		t.Fatal(err)
	}
	s.OverridesChanged("primary")
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice@example.com/calendar"}) {
		t.Errorf("on call %v after cancelling the swap, want alice", got)
	}
}

// TestOverridesOfOtherReplicas: an override stored through another replica
// (so no OverridesChanged here) shows once the index is svcMaxAge old.
func TestOverridesOfOtherReplicas(t *testing.T) {
	store := &sliceStore{}
	s := newStoreService(t, store, primaryDefinition())
	now := srcTestNow
	s.now = func() time.Time { return now }
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice@example.com/calendar"}) {
		t.Fatalf("on call %v before the override, want alice", got)
	}
	store.add("primary", "bob@example.com", -time.Hour, time.Hour)
	now = srcTestNow.Add(svcMaxAge - time.Second)
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice@example.com/calendar"}) {
		t.Fatalf("on call %v within svcMaxAge, want alice from the cached index", got)
	}
	now = srcTestNow.Add(svcMaxAge)
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"bob@example.com/override"}) {
		t.Errorf("on call %v after svcMaxAge, want bob's override made elsewhere", got)
	}
}
