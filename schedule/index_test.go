package schedule

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// ixBrute answers the Index queries by scanning every shift.
type ixBrute []oncall.Shift

func (b ixBrute) at(t time.Time) []oncall.Shift {
	return b.filter(func(s oncall.Shift) bool { return !s.Start.After(t) && s.End.After(t) })
}

func (b ixBrute) between(from, to time.Time) []oncall.Shift {
	if !from.Before(to) {
		return nil
	}
	return b.filter(func(s oncall.Shift) bool { return s.Start.Before(to) && s.End.After(from) })
}

func (b ixBrute) next(t time.Time) []oncall.Shift {
	var first time.Time
	for _, s := range b {
		if s.Start.After(t) && s.End.After(s.Start) && (first.IsZero() || s.Start.Before(first)) {
			first = s.Start
		}
	}
	return b.filter(func(s oncall.Shift) bool { return !first.IsZero() && s.Start.Equal(first) })
}

func (b ixBrute) filter(keep func(oncall.Shift) bool) []oncall.Shift {
	var out []oncall.Shift
	for _, s := range b {
		if s.Start.Before(s.End) && keep(s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, mergeCompare)
	return out
}

// ixRandomShifts makes n shifts on a 15-minute grid (so starts, ends and
// query times often coincide), mostly short, some a week or a month long,
// some empty or inverted.
func ixRandomShifts(r *rand.Rand, n int) []oncall.Shift {
	people := []string{"alice", "bob", "carol", "dave", "erin"}
	quarter := 15 * time.Minute
	var out []oncall.Shift
	for range n {
		start := mergeT0.Add(time.Duration(r.IntN(4*24*60)) * quarter) // 60 days
		var length time.Duration
		switch p := r.IntN(100); {
		case p < 2:
			length = -time.Duration(r.IntN(8)) * quarter // empty or inverted
		case p < 7:
			length = time.Duration(1+r.IntN(30)) * 24 * time.Hour
		default:
			length = time.Duration(1+r.IntN(48)) * quarter
		}
		out = append(out, oncall.Shift{
			Person: people[r.IntN(len(people))],
			Start:  start,
			End:    start.Add(length),
			Source: "calendar",
		})
	}
	return out
}

func TestIndexMatchesBruteForce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 10, 100, 2000} {
		r := rand.New(rand.NewPCG(3, uint64(n)))
		shifts := ixRandomShifts(r, n)
		ix := NewIndex(shifts)
		brute := ixBrute(shifts)
		queryTime := func() time.Time {
			// From a little before the shifts to a little after: on the
			// grid, a nanosecond or a minute before it, or between.
			t := mergeT0.Add(time.Duration(r.IntN(4*24*100)-4*24*5) * 15 * time.Minute)
			switch r.IntN(4) {
			case 1:
				t = t.Add(-time.Nanosecond)
			case 2:
				t = t.Add(-time.Minute)
			case 3:
				t = t.Add(time.Duration(r.IntN(15*60)) * time.Second)
			}
			return t
		}
		for range 1000 {
			at := queryTime()
			if got, want := ix.At(at), brute.at(at); !slices.Equal(got, want) {
				t.Fatalf("n=%d: At(%s):\ngot  %s\nwant %s", n, at, mergeFmt(got), mergeFmt(want))
			}
			from := queryTime()
			to := from.Add(time.Duration(r.IntN(4*24*3)-4) * 15 * time.Minute)
			if got, want := ix.Between(from, to), brute.between(from, to); !slices.Equal(got, want) {
				t.Fatalf("n=%d: Between(%s, %s):\ngot  %s\nwant %s", n, from, to, mergeFmt(got), mergeFmt(want))
			}
			if got, want := ix.Next(at), brute.next(at); !slices.Equal(got, want) {
				t.Fatalf("n=%d: Next(%s):\ngot  %s\nwant %s", n, at, mergeFmt(got), mergeFmt(want))
			}
		}
		valid := len(brute.filter(func(oncall.Shift) bool { return true }))
		if ix.Len() != valid {
			t.Errorf("n=%d: Len = %d, want %d", n, ix.Len(), valid)
		}
	}
}

// The index works on merged shifts as the service builds them, with the
// boundaries of each answer exact.
func TestIndexMergedBoundaries(t *testing.T) {
	merged := Merge(
		[]oncall.Shift{ms("alice", 0, 24, "calendar"), ms("bob", 24, 48, "calendar")},
		[]oncall.Shift{ms("carol", 10, 12, "override")},
	)
	ix := NewIndex(merged)
	tests := []struct {
		name string
		got  []oncall.Shift
		want string
	}{
		{"At the start of a shift", ix.At(mh(10)), "carol 10-12 override"},
		{"At just before its end", ix.At(mh(12).Add(-time.Nanosecond)), "carol 10-12 override"},
		{"At its end is the next shift", ix.At(mh(12)), "alice 12-24 calendar"},
		{"At before everything", ix.At(mh(-1)), ""},
		{"At the end of everything", ix.At(mh(48)), ""},
		{"Between a span", ix.Between(mh(11), mh(25)), "carol 10-12 override, alice 12-24 calendar, bob 24-48 calendar"},
		{"Between ends where a shift starts", ix.Between(mh(0), mh(10)), "alice 0-10 calendar"},
		{"Between empty span", ix.Between(mh(5), mh(5)), ""},
		{"Next in a shift", ix.Next(mh(5)), "carol 10-12 override"},
		{"Next at a start is the following one", ix.Next(mh(10)), "alice 12-24 calendar"},
		{"Next after the last", ix.Next(mh(24)), ""},
	}
	for _, tt := range tests {
		if s := mergeFmt(tt.got); s != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, s, tt.want)
		}
	}
}

// Answers are copies: changing them does not change the index.
func TestIndexAnswersAreCopies(t *testing.T) {
	ix := NewIndex([]oncall.Shift{ms("alice", 0, 24, "calendar")})
	got := ix.At(mh(1))
	got[0].Person = "mallory"
	if again := ix.At(mh(1)); again[0].Person != "alice" {
		t.Errorf("index changed through an answer: %v", again)
	}
}
