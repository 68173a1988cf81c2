package schedule

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

var mergeT0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// mh is mergeT0 plus n hours.
func mh(n int) time.Time { return mergeT0.Add(time.Duration(n) * time.Hour) }

// ms is a shift of person from hour a to hour b with source src.
func ms(person string, a, b int, src string) oncall.Shift {
	return oncall.Shift{Person: person, Start: mh(a), End: mh(b), Source: src}
}

// mergeFmt renders shifts as "person a-b src" in hours from mergeT0.
func mergeFmt(shifts []oncall.Shift) string {
	var parts []string
	for _, s := range shifts {
		parts = append(parts, fmt.Sprintf("%s %g-%g %s", s.Person,
			s.Start.Sub(mergeT0).Hours(), s.End.Sub(mergeT0).Hours(), s.Source))
	}
	return strings.Join(parts, ", ")
}

func TestMerge(t *testing.T) {
	base := []oncall.Shift{ms("alice", 0, 24, "calendar"), ms("bob", 24, 48, "calendar")}
	tests := []struct {
		name   string
		layers [][]oncall.Shift
		want   string
	}{
		{
			name:   "no layers",
			layers: nil,
			want:   "",
		},
		{
			name:   "base only",
			layers: [][]oncall.Shift{base},
			want:   "alice 0-24 calendar, bob 24-48 calendar",
		},
		{
			name:   "override inside a shift cuts it in two",
			layers: [][]oncall.Shift{base, {ms("carol", 10, 12, "override")}},
			want:   "alice 0-10 calendar, carol 10-12 override, alice 12-24 calendar, bob 24-48 calendar",
		},
		{
			name:   "override spanning two shifts",
			layers: [][]oncall.Shift{base, {ms("carol", 20, 30, "override")}},
			want:   "alice 0-20 calendar, carol 20-30 override, bob 30-48 calendar",
		},
		{
			name:   "override matching a shift exactly replaces it",
			layers: [][]oncall.Shift{base, {ms("carol", 0, 24, "override")}},
			want:   "carol 0-24 override, bob 24-48 calendar",
		},
		{
			name:   "override covering everything",
			layers: [][]oncall.Shift{base, {ms("carol", -5, 50, "override")}},
			want:   "carol -5-50 override",
		},
		{
			name:   "adjacent override leaves the shifts alone",
			layers: [][]oncall.Shift{base, {ms("carol", 48, 50, "override"), ms("dave", -2, 0, "override")}},
			want:   "dave -2-0 override, alice 0-24 calendar, bob 24-48 calendar, carol 48-50 override",
		},
		{
			name:   "overlapping overrides in one layer are both on call",
			layers: [][]oncall.Shift{base, {ms("carol", 10, 14, "override"), ms("dave", 12, 16, "override")}},
			want:   "alice 0-10 calendar, carol 10-14 override, dave 12-16 override, alice 16-24 calendar, bob 24-48 calendar",
		},
		{
			name:   "two overrides in one shift",
			layers: [][]oncall.Shift{base, {ms("carol", 2, 4, "override"), ms("dave", 6, 8, "override")}},
			want:   "alice 0-2 calendar, carol 2-4 override, alice 4-6 calendar, dave 6-8 override, alice 8-24 calendar, bob 24-48 calendar",
		},
		{
			name: "several people on call in the base: the override replaces both",
			layers: [][]oncall.Shift{
				{ms("alice", 0, 24, "calendar"), ms("bob", 0, 24, "calendar")},
				{ms("carol", 10, 12, "override")},
			},
			want: "alice 0-10 calendar, bob 0-10 calendar, carol 10-12 override, alice 12-24 calendar, bob 12-24 calendar",
		},
		{
			name: "three layers: the last beats the middle beats the base",
			layers: [][]oncall.Shift{
				base,
				{ms("carol", 10, 30, "overrides")},
				{ms("dave", 20, 22, "override")},
			},
			want: "alice 0-10 calendar, carol 10-20 overrides, dave 20-22 override, carol 22-30 overrides, bob 30-48 calendar",
		},
		{
			name:   "an empty middle layer changes nothing",
			layers: [][]oncall.Shift{base, nil, {ms("dave", 20, 22, "override")}},
			want:   "alice 0-20 calendar, dave 20-22 override, alice 22-24 calendar, bob 24-48 calendar",
		},
		{
			name:   "the same person's adjacent and overlapping shifts in a layer are joined",
			layers: [][]oncall.Shift{{ms("alice", 0, 12, "calendar"), ms("alice", 12, 24, "calendar"), ms("alice", 20, 30, "calendar"), ms("bob", 30, 40, "calendar")}},
			want:   "alice 0-30 calendar, bob 30-40 calendar",
		},
		{
			name:   "no joining across layers or sources",
			layers: [][]oncall.Shift{{ms("alice", 0, 12, "calendar"), ms("alice", 12, 24, "rotation")}, {ms("alice", 24, 30, "override")}},
			want:   "alice 0-12 calendar, alice 12-24 rotation, alice 24-30 override",
		},
		{
			name:   "empty and inverted shifts are dropped, and cover nothing",
			layers: [][]oncall.Shift{base, {ms("carol", 5, 5, "override"), ms("dave", 9, 7, "override")}},
			want:   "alice 0-24 calendar, bob 24-48 calendar",
		},
		{
			name:   "unsorted input",
			layers: [][]oncall.Shift{{base[1], base[0]}, {ms("dave", 30, 31, "override"), ms("carol", 1, 2, "override")}},
			want:   "alice 0-1 calendar, carol 1-2 override, alice 2-24 calendar, bob 24-30 calendar, dave 30-31 override, bob 31-48 calendar",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before [][]oncall.Shift
			for _, l := range tt.layers {
				before = append(before, slices.Clone(l))
			}
			got := Merge(tt.layers...)
			if s := mergeFmt(got); s != tt.want {
				t.Errorf("Merge:\ngot  %s\nwant %s", s, tt.want)
			}
			if !slices.IsSortedFunc(got, mergeCompare) {
				t.Errorf("result not sorted: %s", mergeFmt(got))
			}
			for i := range before {
				if !slices.Equal(before[i], tt.layers[i]) {
					t.Errorf("layer %d modified: %s", i, mergeFmt(tt.layers[i]))
				}
			}
		})
	}
}

func TestGaps(t *testing.T) {
	tests := []struct {
		name     string
		shifts   []oncall.Shift
		from, to int
		want     string // "a-b" hours, comma separated
	}{
		{"nothing", nil, 0, 10, "0-10"},
		{"covered", []oncall.Shift{ms("a", -1, 11, "")}, 0, 10, ""},
		{"covered exactly", []oncall.Shift{ms("a", 0, 10, "")}, 0, 10, ""},
		{"back to back", []oncall.Shift{ms("a", 0, 4, ""), ms("b", 4, 10, "")}, 0, 10, ""},
		{"hole in the middle", []oncall.Shift{ms("a", 0, 4, ""), ms("b", 6, 10, "")}, 0, 10, "4-6"},
		{"start and end uncovered", []oncall.Shift{ms("a", 2, 8, "")}, 0, 10, "0-2, 8-10"},
		{"overlapping and nested, unsorted", []oncall.Shift{ms("c", 7, 9, ""), ms("a", 1, 6, ""), ms("b", 2, 3, "")}, 0, 10, "0-1, 6-7, 9-10"},
		{"shifts outside the span", []oncall.Shift{ms("a", -5, -1, ""), ms("b", 11, 20, "")}, 0, 10, "0-10"},
		{"empty shifts cover nothing", []oncall.Shift{ms("a", 3, 3, ""), ms("b", 8, 5, "")}, 0, 10, "0-10"},
		{"empty span", []oncall.Shift{ms("a", 2, 8, "")}, 5, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var parts []string
			for _, g := range Gaps(tt.shifts, mh(tt.from), mh(tt.to)) {
				parts = append(parts, fmt.Sprintf("%g-%g", g[0].Sub(mergeT0).Hours(), g[1].Sub(mergeT0).Hours()))
			}
			if got := strings.Join(parts, ", "); got != tt.want {
				t.Errorf("Gaps = %q, want %q", got, tt.want)
			}
		})
	}
}
