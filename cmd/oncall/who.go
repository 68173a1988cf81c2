package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/schedule"
	"github.com/oncallbot/oncall/storage"
)

// noOverrides stands in for the database when DATABASE_URL is unset: the
// answer then leaves out overrides made in Slack, and says so.
type noOverrides struct{}

func (noOverrides) Overrides(context.Context, string, time.Time, time.Time) ([]oncall.Override, error) {
	return nil, nil
}

// loadSchedules loads every schedule of the config file, with the
// overrides stored in the database when DATABASE_URL is set: the same
// service the bot answers from.
func loadSchedules(ctx context.Context, configPath string, lookup env, stderr io.Writer, log *slog.Logger) (*schedule.Service, func(), error) {
	cfg, err := config.Load(configPath, lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("load config: %w", err)
	}
	defs, err := scheduleDefinitions(cfg)
	if err != nil {
		return nil, nil, err
	}
	var store schedule.OverrideStore = noOverrides{}
	closeDB := func() {}
	if url := lookup.get("DATABASE_URL", ""); url != "" {
		db, err := storage.Open(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		store, closeDB = db, db.Close
	} else {
		fmt.Fprintln(stderr, "note: DATABASE_URL is not set, so overrides made in Slack are not included")
	}
	svc := schedule.NewService(defs, store, &http.Client{Timeout: 30 * time.Second}, log)
	if err := svc.Load(ctx); err != nil {
		// One unreachable calendar must not hide the others: answer from
		// what loaded, and say what did not.
		fmt.Fprintf(stderr, "warning: %v\n", err)
	}
	return svc, closeDB, nil
}

// runWho implements `oncall who [--schedule NAME] [--at RFC3339]`.
func runWho(ctx context.Context, args []string, stdout, stderr io.Writer, lookup env, log *slog.Logger) error {
	fs := flag.NewFlagSet("who", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", lookup.get("ONCALL_CONFIG", "oncall.yaml"), "config file (env ONCALL_CONFIG)")
	name := fs.String("schedule", "", "only this schedule")
	atText := fs.String("at", "", "the instant to ask about (RFC3339); default now")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	at := time.Now()
	if *atText != "" {
		t, err := time.Parse(time.RFC3339, *atText)
		if err != nil {
			return usageError{fmt.Errorf("--at %q: use RFC3339, such as 2026-11-25T09:00:00+01:00", *atText)}
		}
		at = t
	}
	svc, done, err := loadSchedules(ctx, *configPath, lookup, stderr, log)
	if err != nil {
		return err
	}
	defer done()
	names := svc.Schedules()
	if *name != "" {
		names = []string{*name}
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SCHEDULE\tON CALL\tUNTIL\tNEXT")
	var unknown []string
	for _, n := range names {
		if st := svc.Status(n); (st.URL != "" || st.File != "") && !st.Loaded {
			// "nobody" would be a wrong answer: nobody knows.
			fmt.Fprintf(w, "%s\tunknown (calendar not loaded)\t-\t-\n", n)
			unknown = append(unknown, n)
			continue
		}
		now, err := svc.OnCall(ctx, n, at)
		if err != nil {
			return err
		}
		next, err := nextShifts(ctx, svc, n, at)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n, people(now, "nobody"), until(now), upcoming(next))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("the calendars of %s could not be loaded", strings.Join(unknown, ", "))
	}
	return nil
}

// nextShifts finds the shifts that start next after at, within 90 days.
func nextShifts(ctx context.Context, svc *schedule.Service, name string, at time.Time) ([]oncall.Shift, error) {
	shifts, err := svc.Shifts(ctx, name, at, at.AddDate(0, 0, 90))
	if err != nil {
		return nil, err
	}
	var next []oncall.Shift
	for _, s := range shifts {
		if !s.Start.After(at) {
			continue
		}
		if len(next) > 0 && s.Start.After(next[0].Start) {
			break
		}
		next = append(next, s)
	}
	return next, nil
}

func people(shifts []oncall.Shift, none string) string {
	if len(shifts) == 0 {
		return none
	}
	names := make([]string, len(shifts))
	for i, s := range shifts {
		names[i] = s.Person
	}
	return strings.Join(names, ", ")
}

func until(shifts []oncall.Shift) string {
	if len(shifts) == 0 {
		return "-"
	}
	end := shifts[0].End
	for _, s := range shifts[1:] {
		if s.End.Before(end) {
			end = s.End
		}
	}
	return end.Format(time.RFC3339)
}

func upcoming(next []oncall.Shift) string {
	if len(next) == 0 {
		return "-"
	}
	return people(next, "") + " from " + next[0].Start.Format(time.RFC3339)
}

// runScheduleShifts implements
// `oncall schedule shifts (--schedule NAME | --ics FILE) --from T --to T [--tz ZONE] [--json]`.
func runScheduleShifts(ctx context.Context, args []string, stdout, stderr io.Writer, lookup env, log *slog.Logger) error {
	fs := flag.NewFlagSet("schedule shifts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", lookup.get("ONCALL_CONFIG", "oncall.yaml"), "config file (env ONCALL_CONFIG), with --schedule")
	name := fs.String("schedule", "", "a schedule of the config")
	ics := fs.String("ics", "", "an iCal file to expand instead of a schedule")
	fromText := fs.String("from", "", "start (RFC3339, or a date YYYY-MM-DD in --tz)")
	toText := fs.String("to", "", "end, exclusive (RFC3339 or YYYY-MM-DD)")
	tz := fs.String("tz", "UTC", "time zone for dates, floating times and the output")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*name == "") == (*ics == "") {
		return usageError{errors.New("give exactly one of --schedule NAME and --ics FILE")}
	}
	loc, err := schedule.LoadZone(*tz)
	if err != nil {
		return usageError{fmt.Errorf("--tz: %w", err)}
	}
	from, err := parseInstant("--from", *fromText, loc)
	if err != nil {
		return err
	}
	to, err := parseInstant("--to", *toText, loc)
	if err != nil {
		return err
	}
	if !to.After(from) {
		return usageError{errors.New("--to must be after --from")}
	}

	var shifts []oncall.Shift
	if *ics != "" {
		data, err := os.ReadFile(*ics)
		if err != nil {
			return fmt.Errorf("read calendar: %w", err)
		}
		cal, err := schedule.ParseCalendar(data, loc)
		if err != nil {
			return fmt.Errorf("%s: %w", *ics, err)
		}
		shifts = cal.Shifts(from, to)
	} else {
		svc, done, err := loadSchedules(ctx, *configPath, lookup, stderr, log)
		if err != nil {
			return err
		}
		defer done()
		if shifts, err = svc.Shifts(ctx, *name, from, to); err != nil {
			return err
		}
	}
	return printShifts(stdout, shifts, loc, *asJSON)
}

func parseInstant(flagName, text string, loc *time.Location) (time.Time, error) {
	if text == "" {
		return time.Time{}, usageError{fmt.Errorf("%s is required", flagName)}
	}
	if t, err := time.Parse(time.RFC3339, text); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, text, loc); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Errorf("%s %q: use RFC3339 or YYYY-MM-DD", flagName, text)}
}

func printShifts(w io.Writer, shifts []oncall.Shift, loc *time.Location, asJSON bool) error {
	for i := range shifts {
		shifts[i].Start, shifts[i].End = shifts[i].Start.In(loc), shifts[i].End.In(loc)
	}
	if asJSON {
		if shifts == nil {
			shifts = []oncall.Shift{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(shifts)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tEND\tPERSON\tSOURCE")
	for _, s := range shifts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339), s.Person, s.Source)
	}
	return tw.Flush()
}
