package schedule

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/oncallbot/oncall"
)

var exportUpdate = flag.Bool("update-export", false, "rewrite the export golden files in testdata/export")

var exportNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func exportShifts(t *testing.T) []oncall.Shift {
	t.Helper()
	berlin := mustZone(t, "Europe/Berlin")
	return []oncall.Shift{
		// Out of order on purpose; local times become UTC.
		{Schedule: "payments", Person: "bob@example.com", Start: time.Date(2026, 3, 30, 9, 0, 0, 0, berlin), End: time.Date(2026, 4, 6, 9, 0, 0, 0, berlin), Source: "calendar"},
		{Schedule: "payments", Person: "alice@example.com", Start: time.Date(2026, 3, 23, 9, 0, 0, 0, berlin), End: time.Date(2026, 3, 30, 9, 0, 0, 0, berlin), Source: "rotation"},
		// Two people at once, one an override from Slack.
		{Schedule: "payments", Person: "U024BE7LH", Start: time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 31, 18, 30, 0, 0, time.UTC), Source: "override"},
		// Text that needs escaping, and a name long enough to fold.
		{Schedule: "payments", Person: "Zoë Ångström, Night; Shift \\ Lead — Plattform-Bereitschaft Süd-Ost Team", Start: time.Date(2026, 4, 6, 22, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 7, 6, 0, 0, 0, time.UTC), Source: "calendar"},
		// Dropped: empty.
		{Schedule: "payments", Person: "nobody", Start: time.Date(2026, 4, 8, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 8, 0, 0, 0, 0, time.UTC)},
	}
}

func TestExportICalGolden(t *testing.T) {
	tests := []struct {
		name   string
		cal    string
		shifts []oncall.Shift
	}{
		{"payments.ics", "Payments on call", exportShifts(t)},
		{"empty.ics", "Nobody, yet", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := exportICal(&buf, tt.cal, tt.shifts, exportNow); err != nil {
				t.Fatalf("export: %v", err)
			}
			golden := filepath.Join("testdata", "export", tt.name)
			if *exportUpdate {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update-export to create it): %v", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("export differs from %s:\n%s", golden, buf.String())
			}
			exportCheckWellFormed(t, buf.Bytes())
		})
	}
}

// exportCheckWellFormed checks what subscribers rely on: CRLF line ends,
// lines of at most 75 octets with UTF-8 intact, and that go-ical decodes
// it with the calendar properties and one UTC VEVENT per shift.
func exportCheckWellFormed(t *testing.T, data []byte) {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Errorf("does not end with CRLF")
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\r\n")), []byte("\r\n")) {
		if len(line) > exportLineMax {
			t.Errorf("line %d has %d octets: %q", i+1, len(line), line)
		}
		if !utf8.Valid(line) {
			t.Errorf("line %d is not valid UTF-8 on its own: %q", i+1, line)
		}
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, line)
		}
	}
	cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		t.Fatalf("go-ical decode: %v", err)
	}
	for _, p := range []string{ical.PropProductID, ical.PropVersion, "X-WR-CALNAME"} {
		if cal.Props.Get(p) == nil {
			t.Errorf("calendar has no %s", p)
		}
	}
	utc := regexp.MustCompile(`^\d{8}T\d{6}Z$`)
	for _, ev := range cal.Events() {
		for _, p := range []string{ical.PropUID, ical.PropDateTimeStamp, ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropSummary} {
			prop := ev.Props.Get(p)
			if prop == nil {
				t.Errorf("event has no %s", p)
				continue
			}
			if p != ical.PropUID && p != ical.PropSummary && !utc.MatchString(prop.Value) {
				t.Errorf("event %s = %q, want a UTC date-time", p, prop.Value)
			}
		}
	}
}

// Decoding the export gives back each shift's person, start and end, and
// the UIDs stay the same in a later export with other shifts around them.
func TestExportICalDecodes(t *testing.T) {
	shifts := exportShifts(t)
	var first bytes.Buffer
	if err := exportICal(&first, "Payments", shifts, exportNow); err != nil {
		t.Fatal(err)
	}
	cal, err := ical.NewDecoder(&first).Decode()
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	uids := map[string]string{} // person -> UID
	var got []string
	for _, ev := range cal.Events() {
		person, err := ev.Props.Text(ical.PropSummary)
		if err != nil {
			t.Fatal(err)
		}
		start, err := ev.DateTimeStart(time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		end, err := ev.DateTimeEnd(time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		uids[person] = ev.Props.Get(ical.PropUID).Value
		got = append(got, person+" "+start.Format(time.RFC3339)+" "+end.Format(time.RFC3339))
	}
	var want []string
	sorted := slices.Clone(shifts[:4]) // the fifth is empty: not exported
	slices.SortFunc(sorted, mergeCompare)
	for _, s := range sorted {
		want = append(want, s.Person+" "+s.Start.UTC().Format(time.RFC3339)+" "+s.End.UTC().Format(time.RFC3339))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("decoded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A later export: another time, a changed end, a new shift in front.
	later := append([]oncall.Shift{{Schedule: "payments", Person: "carol@example.com",
		Start: time.Date(2026, 3, 16, 8, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 23, 8, 0, 0, 0, time.UTC)}}, shifts...)
	later[2].End = later[2].End.Add(time.Hour)
	var second bytes.Buffer
	if err := exportICal(&second, "Payments", later, exportNow.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for person, uid := range uids {
		if !strings.Contains(second.String(), "UID:"+uid+"\r\n") {
			t.Errorf("UID %s of %s's shift changed in the later export", uid, person)
		}
	}
	if n := len(uids); n != 4 {
		t.Errorf("%d distinct UIDs, want 4", n)
	}
}

func TestExportICalUniqueUIDs(t *testing.T) {
	s := oncall.Shift{Schedule: "x", Person: "alice", Start: mh(0), End: mh(8)}
	dup := s
	dup.End = mh(4)
	other := s
	other.Schedule = "y"
	var buf bytes.Buffer
	if err := exportICal(&buf, "x", []oncall.Shift{s, dup, other}, exportNow); err != nil {
		t.Fatal(err)
	}
	uids := regexp.MustCompile(`(?m)^UID:(.*)\r$`).FindAllStringSubmatch(buf.String(), -1)
	seen := map[string]bool{}
	for _, m := range uids {
		if seen[m[1]] {
			t.Errorf("UID %s twice", m[1])
		}
		seen[m[1]] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d UIDs, want 3:\n%s", len(seen), buf.String())
	}
}

func TestExportFold(t *testing.T) {
	long := strings.Repeat("é", 60) // 120 octets
	tests := []struct{ in, want string }{
		{"A:b\r\n", "A:b\r\n"},
		{"SUMMARY:" + strings.Repeat("x", 67) + "\r\n", "SUMMARY:" + strings.Repeat("x", 67) + "\r\n"}, // exactly 75
		{"SUMMARY:" + strings.Repeat("x", 68) + "\r\n", "SUMMARY:" + strings.Repeat("x", 67) + "\r\n x\r\n"},
		// 8 + 67 = 75 octets fit on the first line, but é is two octets:
		// cut before the one that would straddle.
		{"SUMMARY:" + long + "\r\n", "SUMMARY:" + strings.Repeat("é", 33) + "\r\n " + strings.Repeat("é", 27) + "\r\n"},
	}
	for _, tt := range tests {
		if got := string(exportFold([]byte(tt.in))); got != tt.want {
			t.Errorf("exportFold(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
		}
	}
}

// The export parses back with ParseCalendar to the same shifts: person,
// start and end, in the order Calendar.Shifts gives them.
func TestExportICalRoundTrip(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	rot := Rotation{Users: []string{"alice@example.com", "bob@example.com", "carol@example.com"},
		Shift: 7 * 24 * time.Hour, Handoff: time.Date(2026, 1, 5, 9, 0, 0, 0, berlin), Location: berlin}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
	merged := Merge(rot.Shifts(from, to), []oncall.Shift{
		{Person: "dave@example.com", Start: time.Date(2026, 3, 29, 1, 0, 0, 0, berlin), End: time.Date(2026, 3, 29, 4, 0, 0, 0, berlin), Source: "override"},
		{Person: "erin@example.com", Start: time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC), End: time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC), Source: "override"},
	})
	tests := []struct {
		name   string
		shifts []oncall.Shift
	}{
		{"merged rotation and overrides over a year", merged},
		{"text that needs escaping, overlapping shifts", exportShifts(t)[:4]},
		{"nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := ExportICal(&buf, "Round trip", tt.shifts); err != nil {
				t.Fatalf("export: %v", err)
			}
			cal, err := ParseCalendar(buf.Bytes(), time.UTC)
			if err != nil {
				t.Fatalf("ParseCalendar of the export: %v\n%s", err, buf.String())
			}
			got := cal.Shifts(from.AddDate(-1, 0, 0), to.AddDate(1, 0, 0))
			want := exportComparable(tt.shifts)
			if g := exportComparable(got); !slices.Equal(g, want) {
				t.Errorf("round trip:\ngot  %q\nwant %q", g, want)
			}
			for _, s := range got {
				if s.Source != "calendar" || s.Schedule != "" {
					t.Errorf("parsed shift %+v: want Source calendar, no Schedule", s)
				}
			}
		})
	}
}

// exportComparable is what survives an export, sorted: person, start and
// end as UTC instants.
func exportComparable(shifts []oncall.Shift) []string {
	var out []string
	for _, s := range shifts {
		if s.Start.Before(s.End) {
			out = append(out, s.Start.UTC().Format(time.RFC3339Nano)+" "+s.Person+" "+s.End.UTC().Format(time.RFC3339Nano))
		}
	}
	slices.Sort(out)
	return out
}
