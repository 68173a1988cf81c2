package schedule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/oncallbot/oncall"
)

// ErrUnknownSchedule means no schedule has the name asked for.
var ErrUnknownSchedule = errors.New("unknown schedule")

// Shift sources set by the Service (Calendar.Shifts sets "calendar" and
// Rotation.Shifts "rotation").
const (
	SourceOverridesCalendar = "overrides"
	SourceOverride          = "override"
)

// Definition is one schedule, built by cmd/oncall from config.Schedule.
type Definition struct {
	Name     string
	Location *time.Location // nil means UTC
	// ICal is an http(s) or webcal URL, File a local path, OverridesICal
	// either; "" when unused. ICal wins when both ICal and File are set.
	ICal, File, OverridesICal string
	Rotations                 []Rotation
	Channel, Usergroup        string
}

// OverrideStore holds the overrides made in Slack (storage.DB is one).
type OverrideStore interface {
	// Overrides returns the live overrides of a schedule overlapping [from, to).
	Overrides(ctx context.Context, schedule string, from, to time.Time) ([]oncall.Override, error)
}

// What the Service keeps expanded, around now, and how often it refreshes.
const (
	svcWindowBefore = 7 * 24 * time.Hour
	svcWindowAfter  = 90 * 24 * time.Hour
	svcRefreshSpec  = "@every 5m"
)

// Service answers who is on call for the configured schedules. It keeps a
// copy of every calendar (refreshed by Run) and, per schedule, an index of
// the merged shifts over a window around now, so answers touch neither the
// network nor a parser; stored overrides are read when the index is built.
//
// Layers, lowest first, each replacing the ones below wherever it has
// someone on call: the base (the calendar plus every rotation: several
// rotations are follow-the-sun), the overrides calendar, then the stored
// overrides, among which a later one (higher ID) beats an earlier one.
//
// A Service is safe for concurrent use.
type Service struct {
	// loaded is set once a Load has run: Run then does not load again
	// before its first refresh.
	loaded      atomic.Bool
	log         *slog.Logger
	store       OverrideStore // nil: no stored overrides
	now         func() time.Time
	refreshSpec string
	names       []string // in definition order
	schedules   map[string]*svcSchedule
}

type svcSchedule struct {
	def       Definition
	base      *calSource // nil when the schedule has no calendar
	overrides *calSource // nil when it has no overrides calendar

	// gen changes whenever what the index is built from changes: a
	// calendar or the stored overrides. An index of an older gen is stale.
	gen     atomic.Uint64
	buildMu sync.Mutex // one build at a time
	view    atomic.Pointer[svcView]
}

// svcView is an immutable index of a schedule's merged shifts over
// [from, to), built from the sources as of gen.
type svcView struct {
	gen      uint64
	from, to time.Time
	built    time.Time
	index    *Index
}

func (v *svcView) covers(from, to time.Time) bool {
	return v != nil && !from.Before(v.from) && !to.After(v.to)
}

// svcMaxAge bounds how long an index is used before the stored overrides
// are read again: OverridesChanged tells only this replica of a change
// made through it, so other replicas see it within this time.
const svcMaxAge = 30 * time.Second

// current says whether v answers for [from, to) as of gen at now.
func (v *svcView) current(gen uint64, from, to, now time.Time) bool {
	return v.covers(from, to) && v.gen == gen && now.Sub(v.built) < svcMaxAge
}

// NewService prepares the schedules; nothing is loaded until Load or Run.
// store may be nil (no stored overrides), client nil (a default client) and
// log nil (slog.Default()). Of several definitions with the same name the
// first counts.
func NewService(defs []Definition, store OverrideStore, client *http.Client, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	if client == nil {
		client = &http.Client{Timeout: srcFetchTimeout}
	}
	s := &Service{
		log:         log,
		store:       store,
		now:         time.Now,
		refreshSpec: svcRefreshSpec,
		schedules:   make(map[string]*svcSchedule, len(defs)),
	}
	for _, d := range defs {
		if _, dup := s.schedules[d.Name]; dup {
			log.Warn("duplicate schedule definition ignored", "schedule", d.Name)
			continue
		}
		if d.Location == nil {
			d.Location = time.UTC
		}
		dlog := log.With("schedule", d.Name)
		sch := &svcSchedule{def: d}
		switch {
		case d.ICal != "":
			if d.File != "" {
				dlog.Warn("schedule has both an ical URL and a file; using the URL")
			}
			sch.base = newCalSource(d.ICal, d.Location, client, dlog)
		case d.File != "":
			sch.base = newCalSource(d.File, d.Location, client, dlog)
		}
		if d.OverridesICal != "" {
			sch.overrides = newCalSource(d.OverridesICal, d.Location, client, dlog.With("calendar", "overrides"))
		}
		s.schedules[d.Name] = sch
		s.names = append(s.names, d.Name)
	}
	return s
}

// Schedules returns the schedule names in definition order.
func (s *Service) Schedules() []string { return slices.Clone(s.names) }

// Run loads every source now, then refreshes them every 5 minutes until ctx
// is done; it returns nil then. Failures are logged and kept in Status: a
// source that fails keeps its last good copy.
func (s *Service) Run(ctx context.Context) error {
	c := cron.New(
		cron.WithLogger(svcCronLogger{s.log}),
		cron.WithChain(cron.SkipIfStillRunning(svcCronLogger{s.log})),
	)
	if _, err := c.AddFunc(s.refreshSpec, func() { _ = s.Load(ctx) }); err != nil {
		return fmt.Errorf("schedule refresh %q: %w", s.refreshSpec, err)
	}
	if !s.loaded.Load() { // the caller may have loaded before starting what asks
		_ = s.Load(ctx) // failures are logged and kept in Status
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// Load refreshes every source once, in parallel, and rebuilds every
// schedule's index. It returns the failures, joined; each is also logged
// and kept in Status, and the schedules keep their last good copies.
func (s *Service) Load(ctx context.Context) error {
	defer s.loaded.Store(true)
	now := s.now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, name := range s.names {
		sch := s.schedules[name]
		for _, src := range []*calSource{sch.base, sch.overrides} {
			if src == nil {
				continue
			}
			wg.Go(func() {
				changed, err := src.refresh(ctx, now)
				if changed {
					sch.gen.Add(1)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("schedule %q: %w", name, err))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load schedules: %w", err)
	}
	for _, name := range s.names {
		sch := s.schedules[name]
		sch.buildMu.Lock()
		_, err := s.build(ctx, sch)
		sch.buildMu.Unlock()
		if err != nil {
			s.log.Warn("cannot rebuild schedule; answers keep the previous one", "schedule", name, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// OnCall returns the shifts of whoever is on call at the instant at.
func (s *Service) OnCall(ctx context.Context, schedule string, at time.Time) ([]oncall.Shift, error) {
	sch, err := s.schedule(schedule)
	if err != nil {
		return nil, err
	}
	ix, err := s.index(ctx, sch, at, at.Add(time.Nanosecond))
	if err != nil {
		return nil, err
	}
	return ix.At(at), nil
}

// Shifts returns the merged shifts overlapping [from, to), sorted by Start
// then Person.
func (s *Service) Shifts(ctx context.Context, schedule string, from, to time.Time) ([]oncall.Shift, error) {
	sch, err := s.schedule(schedule)
	if err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, nil
	}
	ix, err := s.index(ctx, sch, from, to)
	if err != nil {
		return nil, err
	}
	return ix.Between(from, to), nil
}

// Status tells how the calendars of a schedule are doing; a zero status for
// an unknown schedule or one without calendars.
func (s *Service) Status(schedule string) SourceStatus {
	sch, ok := s.schedules[schedule]
	if !ok {
		return SourceStatus{}
	}
	var st SourceStatus
	if sch.base != nil {
		st = sch.base.status()
	}
	if sch.overrides != nil {
		o := sch.overrides.status()
		st.Overrides = &o
	}
	return st
}

// Problem says, for people, why a schedule's answers may be out of date:
// a calendar whose last fetch failed (its last good copy is in use, if
// any). It is "" when every calendar is current.
func (s *Service) Problem(schedule string) string {
	st := s.Status(schedule)
	var problems []string
	for _, c := range []struct {
		what string
		st   *SourceStatus
	}{{"calendar", &st}, {"overrides calendar", st.Overrides}} {
		if c.st == nil || c.st.LastError == "" {
			continue
		}
		since := "never loaded"
		if c.st.Loaded {
			since = "using the copy of " + c.st.LastSuccess.UTC().Format(time.RFC3339)
		}
		problems = append(problems, fmt.Sprintf("the %s cannot be refreshed (%s): %s", c.what, since, c.st.LastError))
	}
	return strings.Join(problems, "; ")
}

// version changes whenever a calendar of any schedule changes or stored
// overrides are announced changed: what is derived from the answers (the
// exported feeds) is stale once it changes.
func (s *Service) version() uint64 {
	var v uint64
	for _, sch := range s.schedules {
		v += sch.gen.Load()
	}
	return v
}

// OverridesChanged makes the next answer for the schedule read the stored
// overrides again: call it after storing or cancelling one.
func (s *Service) OverridesChanged(schedule string) {
	if sch, ok := s.schedules[schedule]; ok {
		sch.gen.Add(1)
	}
}

func (s *Service) schedule(name string) (*svcSchedule, error) {
	sch, ok := s.schedules[name]
	if !ok {
		return nil, fmt.Errorf("schedule %q: %w", name, ErrUnknownSchedule)
	}
	return sch, nil
}

// index returns an index that answers for [from, to): the cached one when
// it is current and covers the span; a rebuilt one when the span lies
// within the window around now; else one computed for the span alone. When
// the stored overrides cannot be read, a stale cached index that covers
// the span is better than no answer.
func (s *Service) index(ctx context.Context, sch *svcSchedule, from, to time.Time) (*Index, error) {
	now := s.now()
	v := sch.view.Load()
	if v.current(sch.gen.Load(), from, to, now) {
		return v.index, nil
	}
	if from.Before(now.Add(-svcWindowBefore)) || to.After(now.Add(svcWindowAfter)) {
		shifts, err := s.merged(ctx, sch, from, to)
		if err != nil {
			return nil, err
		}
		return NewIndex(shifts), nil
	}

	sch.buildMu.Lock()
	defer sch.buildMu.Unlock()
	if v = sch.view.Load(); v.current(sch.gen.Load(), from, to, now) {
		return v.index, nil // built while we waited
	}
	nv, err := s.build(ctx, sch)
	if err != nil {
		if v.covers(from, to) {
			s.log.WarnContext(ctx, "cannot rebuild schedule; answering from the previous one",
				"schedule", sch.def.Name, "err", err)
			return v.index, nil
		}
		return nil, err
	}
	return nv.index, nil
}

// build indexes the schedule over the window around now and caches it.
// The caller holds sch.buildMu.
func (s *Service) build(ctx context.Context, sch *svcSchedule) (*svcView, error) {
	gen := sch.gen.Load() // before reading the sources: a change after makes this stale
	now := s.now()
	from, to := now.Add(-svcWindowBefore), now.Add(svcWindowAfter)
	shifts, err := s.merged(ctx, sch, from, to)
	if err != nil {
		return nil, err
	}
	v := &svcView{gen: gen, from: from, to: to, built: now, index: NewIndex(shifts)}
	sch.view.Store(v)
	return v, nil
}

// merged computes the schedule's layers over [from, to) and merges them.
func (s *Service) merged(ctx context.Context, sch *svcSchedule, from, to time.Time) ([]oncall.Shift, error) {
	name := sch.def.Name
	var base, overCal, stored []oncall.Shift
	if sch.base != nil {
		if cal := sch.base.calendar(); cal != nil {
			base = append(base, cal.Shifts(from, to)...)
		}
	}
	for _, r := range sch.def.Rotations {
		base = append(base, r.Shifts(from, to)...)
	}
	if sch.overrides != nil {
		if cal := sch.overrides.calendar(); cal != nil {
			overCal = append(overCal, cal.Shifts(from, to)...)
			for i := range overCal {
				overCal[i].Source = SourceOverridesCalendar
			}
		}
	}
	if s.store != nil {
		ovs, err := s.store.Overrides(ctx, name, from, to)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", name, err)
		}
		stored = svcOverrideLayer(ovs)
	}
	for _, layer := range [][]oncall.Shift{base, overCal, stored} {
		for i := range layer {
			layer[i].Schedule = name
		}
	}
	return Merge(base, overCal, stored), nil
}

// svcOverrideLayer turns stored overrides into one layer in which a later
// override (higher ID) replaces an earlier one where they overlap: a swap
// of part of a swapped shift gives it back, rather than putting both on
// call.
func svcOverrideLayer(ovs []oncall.Override) []oncall.Shift {
	ovs = slices.SortedFunc(slices.Values(ovs), func(a, b oncall.Override) int { return cmp.Compare(a.ID, b.ID) })
	layers := make([][]oncall.Shift, 0, len(ovs))
	for _, o := range ovs {
		layers = append(layers, []oncall.Shift{{
			Schedule: o.Schedule, Person: o.Person, Start: o.Start, End: o.End, Source: SourceOverride,
		}})
	}
	return Merge(layers...)
}

// svcCronLogger writes cron's messages to slog: routine ones at debug.
type svcCronLogger struct{ log *slog.Logger }

func (l svcCronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l svcCronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
