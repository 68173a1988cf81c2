package storage

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

var overrideBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// hours is overrideBase plus n hours.
func hours(n int) time.Time { return overrideBase.Add(time.Duration(n) * time.Hour) }

func TestAddOverrideRoundTrip(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	in := oncall.Override{
		Schedule:  "primary",
		Person:    "bob@example.com",
		Start:     hours(0).In(berlin).Add(123 * time.Nanosecond), // below Postgres' microsecond
		End:       hours(8),
		CreatedBy: oncall.SlackActor("U1"),
		Reason:    "swap with alice",
	}
	got, err := db.AddOverride(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == 0 || got.CreatedAt.IsZero() {
		t.Errorf("AddOverride returned ID %d, CreatedAt %v; want both set", got.ID, got.CreatedAt)
	}
	if got.Start != hours(0) || got.Start.Location() != time.UTC {
		t.Errorf("Start = %v, want %v in UTC (to the microsecond)", got.Start, hours(0))
	}
	loaded, err := db.Override(t.Context(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if loaded != got {
		t.Errorf("Override(%d) = %+v, want what AddOverride returned: %+v", got.ID, loaded, got)
	}

	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in.CreatedAt = created
	in.End = hours(9) // another range: the same one again is a conflict
	got, err = db.AddOverride(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt != created {
		t.Errorf("CreatedAt = %v, want the given %v", got.CreatedAt, created)
	}
}

func TestAddOverrideRejects(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	valid := oncall.Override{Schedule: "primary", Person: "bob", Start: hours(0), End: hours(1), CreatedBy: "slack:U1"}
	tests := []struct {
		name     string
		change   func(*oncall.Override)
		wantText bool // ErrInvalidText
	}{
		{"empty schedule", func(o *oncall.Override) { o.Schedule = "" }, false},
		{"empty person", func(o *oncall.Override) { o.Person = "" }, false},
		{"zero start", func(o *oncall.Override) { o.Start = time.Time{} }, false},
		{"end equals start", func(o *oncall.Override) { o.End = o.Start }, false},
		{"end before start", func(o *oncall.Override) { o.End = hours(-1) }, false},
		{"NUL in reason", func(o *oncall.Override) { o.Reason = "a\x00b" }, true},
		{"invalid UTF-8 in person", func(o *oncall.Override) { o.Person = "\xff" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			_, err := db.AddOverride(t.Context(), o)
			if err == nil {
				t.Fatal("AddOverride succeeded, want an error")
			}
			if errors.Is(err, ErrInvalidText) != tt.wantText {
				t.Errorf("AddOverride: %v; errors.Is(ErrInvalidText) = %v, want %v", err, !tt.wantText, tt.wantText)
			}
		})
	}
	if n := scalar[int64](t, db, `SELECT count(*) FROM schedule_overrides`); n != 0 {
		t.Errorf("%d overrides stored after rejected adds, want 0", n)
	}
}

func TestOverrideSpanCheckedByDatabase(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	_, err := db.pool.Exec(t.Context(), `
		INSERT INTO schedule_overrides (schedule, person, starts_at, ends_at, created_by)
		VALUES ('primary', 'bob', $1, $1, 'system')`, hours(0))
	if !isViolation(err, "23514") { // check_violation
		t.Errorf("insert of an empty span: %v, want a check violation", err)
	}
}

func TestOverridesOverlapAndCancel(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	add := func(schedule, person string, from, to int) int64 {
		t.Helper()
		o, err := db.AddOverride(t.Context(), oncall.Override{
			Schedule: schedule, Person: person, Start: hours(from), End: hours(to), CreatedBy: oncall.ActorSystem,
		})
		if err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	early := add("primary", "alice", 0, 4)     // [0, 4)
	late := add("primary", "bob", 10, 12)      // [10, 12)
	middle := add("primary", "carol", 3, 11)   // [3, 11)
	other := add("secondary", "alice", 0, 100) // another schedule
	cancelled := add("primary", "dave", 0, 100)
	if err := db.CancelOverride(t.Context(), cancelled, oncall.SlackActor("U9")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		schedule string
		from, to time.Time
		want     []int64
	}{
		{"all, by start", "primary", hours(-10), hours(100), []int64{early, middle, late}},
		{"end is exclusive", "primary", hours(4), hours(10), []int64{middle}},
		{"touching the start is no overlap", "primary", hours(12), hours(20), nil},
		{"inside one", "primary", hours(1), hours(2), []int64{early}},
		{"zero to means no end", "primary", hours(5), time.Time{}, []int64{middle, late}},
		{"other schedule", "secondary", hours(50), hours(51), []int64{other}},
		{"unknown schedule", "nope", hours(-10), hours(100), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Overrides(t.Context(), tt.schedule, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if ids := overrideIDs(got); !slices.Equal(ids, tt.want) {
				t.Errorf("Overrides = %v, want %v", ids, tt.want)
			}
			for _, o := range got {
				if o.Schedule != tt.schedule {
					t.Errorf("override %d has schedule %q, want %q", o.ID, o.Schedule, tt.schedule)
				}
			}
		})
	}

	for _, id := range []int64{cancelled, 1 << 40} {
		if err := db.CancelOverride(t.Context(), id, oncall.ActorSystem); !errors.Is(err, oncall.ErrNotFound) {
			t.Errorf("CancelOverride(%d): %v, want ErrNotFound", id, err)
		}
		if _, err := db.Override(t.Context(), id); !errors.Is(err, oncall.ErrNotFound) {
			t.Errorf("Override(%d): %v, want ErrNotFound", id, err)
		}
	}
	by := scalar[string](t, db, `SELECT cancelled_by FROM schedule_overrides WHERE id = $1`, cancelled)
	if by != "slack:U9" {
		t.Errorf("cancelled_by = %q, want slack:U9", by)
	}

	got, err := db.OverridesFor(t.Context(), "alice", hours(5))
	if err != nil {
		t.Fatal(err)
	}
	if ids := overrideIDs(got); !slices.Equal(ids, []int64{other}) {
		t.Errorf("OverridesFor(alice, +5h) = %v, want [%d] (the primary one has ended)", ids, other)
	}
}

func overrideIDs(os []oncall.Override) []int64 {
	var ids []int64
	for _, o := range os {
		ids = append(ids, o.ID)
	}
	return ids
}

func TestAddOverrideTwiceConflicts(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	o := oncall.Override{Schedule: "primary", Person: "bob@example.com", Start: hours(0), End: hours(8), CreatedBy: oncall.SlackActor("U1")}
	first, err := db.AddOverride(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddOverride(t.Context(), o); !errors.Is(err, oncall.ErrConflict) {
		t.Fatalf("the same override again: %v, want ErrConflict", err)
	}
	// Once cancelled, the same range can be given again.
	if err := db.CancelOverride(t.Context(), first.ID, oncall.SlackActor("U1")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddOverride(t.Context(), o); err != nil {
		t.Errorf("the same override after cancelling the first: %v", err)
	}
}
