package schedule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/oncallbot/oncall"
)

const (
	exportProdID = "-//oncallbot//oncall//EN"
	// exportRefresh is how often subscribers are asked to refresh
	// (REFRESH-INTERVAL and Outlook's X-PUBLISHED-TTL); Google Calendar
	// ignores it and refreshes on its own schedule.
	exportRefresh = "PT1H"
	// exportLineMax is the longest content line in octets (RFC 5545 3.1).
	exportLineMax = 75
)

// ExportICal writes shifts as an iCalendar that Google Calendar and Outlook
// can subscribe to: one VEVENT per shift with DTSTART and DTEND in UTC,
// SUMMARY the person, a UID that stays the same across exports (a hash of
// schedule, person and start), DTSTAMP the time of the export, and
// TRANSP:TRANSPARENT so that a week on call does not show as busy. name is
// the calendar's display name (X-WR-CALNAME and NAME). It parses back with
// ParseCalendar to the same shifts (Person, Start, End).
//
// With no shifts the calendar has no events: RFC 5545 asks for at least
// one component, but Google Calendar and Outlook accept an empty calendar,
// which is what a schedule with nobody on call is.
func ExportICal(w io.Writer, name string, shifts []oncall.Shift) error {
	return exportICal(w, name, shifts, time.Now())
}

func exportICal(w io.Writer, name string, shifts []oncall.Shift, now time.Time) error {
	cal := ical.NewCalendar()
	exportText(cal.Props, ical.PropProductID, exportProdID)
	exportText(cal.Props, ical.PropVersion, "2.0")
	exportText(cal.Props, ical.PropCalendarScale, "GREGORIAN")
	exportText(cal.Props, ical.PropMethod, "PUBLISH")
	exportText(cal.Props, "X-WR-CALNAME", name)
	exportText(cal.Props, ical.PropName, name)
	exportText(cal.Props, "X-PUBLISHED-TTL", exportRefresh)
	// RFC 7986 requires VALUE=DURATION here, which go-ical's SetDuration
	// leaves out as the default.
	refresh := ical.NewProp(ical.PropRefreshInterval)
	refresh.Params.Set(ical.ParamValue, string(ical.ValueDuration))
	refresh.Value = exportRefresh
	cal.Props.Set(refresh)

	sorted := slices.Clone(shifts)
	slices.SortFunc(sorted, mergeCompare)
	stamp := now.UTC().Truncate(time.Second)
	seen := make(map[string]int, len(sorted))
	for _, s := range sorted {
		if !s.Start.Before(s.End) {
			continue
		}
		uid := exportUID(s)
		// The same person starting twice in one schedule (overlapping
		// shifts that were not merged): keep UIDs unique, and stable for a
		// stable input.
		if n := seen[uid]; n > 0 {
			seen[uid] = n + 1
			uid = fmt.Sprintf("%s-%d", uid, n+1)
		} else {
			seen[uid] = 1
		}
		ev := ical.NewEvent()
		exportText(ev.Props, ical.PropUID, uid)
		ev.Props.SetDateTime(ical.PropDateTimeStamp, stamp)
		ev.Props.SetDateTime(ical.PropDateTimeStart, s.Start.UTC())
		ev.Props.SetDateTime(ical.PropDateTimeEnd, s.End.UTC())
		exportText(ev.Props, ical.PropSummary, s.Person)
		exportText(ev.Props, ical.PropDescription, exportDescription(s))
		exportText(ev.Props, ical.PropTransparency, "TRANSPARENT")
		cal.Children = append(cal.Children, ev.Component)
	}

	var buf bytes.Buffer
	if len(cal.Children) == 0 {
		exportEmpty(&buf, cal)
	} else if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		return fmt.Errorf("encode calendar %q: %w", name, err)
	}
	if _, err := w.Write(exportFold(buf.Bytes())); err != nil {
		return fmt.Errorf("write calendar %q: %w", name, err)
	}
	return nil
}

// exportUID is the shift's UID: the same for the same schedule, person and
// start in every export, so a subscribed calendar updates its events
// rather than duplicating them.
func exportUID(s oncall.Shift) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", s.Schedule, s.Person, s.Start.UTC().Format(time.RFC3339Nano))
	return hex.EncodeToString(h.Sum(nil)[:16]) + "@oncall"
}

func exportDescription(s oncall.Shift) string {
	d := "On call"
	if s.Schedule != "" {
		d += " for " + s.Schedule
	}
	if s.Source != "" {
		d += " (" + s.Source + ")"
	}
	return d
}

// exportText sets the text property name, escaped, without CR (which no
// property value may contain; line breaks are kept as \n). Text is the
// default type of X- properties too, so VALUE=TEXT is left out.
func exportText(props ical.Props, name, text string) {
	p := ical.NewProp(name)
	p.SetText(strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n"))
	if p.Params.Get(ical.ParamValue) == string(ical.ValueText) {
		p.Params.Del(ical.ParamValue)
	}
	props.Set(p)
}

// exportEmpty writes a calendar without components, which the go-ical
// encoder refuses: its properties in the encoder's order (by name).
func exportEmpty(buf *bytes.Buffer, cal *ical.Calendar) {
	buf.WriteString("BEGIN:VCALENDAR\r\n")
	for _, n := range slices.Sorted(maps.Keys(cal.Props)) {
		for _, p := range cal.Props[n] {
			buf.WriteString(p.Name)
			for _, k := range slices.Sorted(maps.Keys(p.Params)) {
				buf.WriteString(";" + k + "=" + strings.Join(p.Params[k], ","))
			}
			buf.WriteString(":" + p.Value + "\r\n")
		}
	}
	buf.WriteString("END:VCALENDAR\r\n")
}

// exportFold folds content lines longer than 75 octets (RFC 5545 3.1):
// a CRLF and a space before the 76th octet, never inside a UTF-8 sequence.
func exportFold(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(data)/exportLineMax*3)
	for len(data) > 0 {
		line, next := data, []byte(nil)
		if i := bytes.Index(data, []byte("\r\n")); i >= 0 {
			line, next = data[:i], data[i+2:]
		}
		limit := exportLineMax
		for len(line) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			out = append(out, line[:cut]...)
			out = append(out, "\r\n "...)
			line = line[cut:]
			limit = exportLineMax - 1 // the leading space counts
		}
		out = append(out, line...)
		out = append(out, "\r\n"...)
		data = next
	}
	return out
}
