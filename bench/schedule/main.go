// Command schedule measures the schedule package on a large calendar
// (issue 3; the figures are in docs/benchmarks.md, "Schedules (issue 3)").
//
// It generates a one-year iCalendar of 5,000 VEVENTs in Europe/Berlin as
// Google Calendar exports it (recurring series with RRULE, EXDATE and
// RECURRENCE-ID overrides, some cancelled; single events in UTC, with TZID,
// with DURATION, all-day, named by ATTENDEE), then times each step of
// loading a schedule and answering who is on call:
//
//  1. ParseCalendar of the text;
//  2. Calendar.Shifts for the year (expansion);
//  3. Merge with a layer of Slack overrides;
//  4. NewIndex of the merged shifts;
//  5. Index.At for 10,000 random instants of the year (per query), and
//     Index.Between for the 7 days after each (what /oncall schedule asks),
//     with a brute-force scan of the merged shifts as a reference.
//
// Before timing it checks the expansion against the shifts the generator
// computed from the rules it wrote, and the index against the scan; it
// fails rather than time wrong answers. Everything runs in memory: no
// network, no files. It prints Markdown on stdout: per step the wall time
// per op (testing.Benchmark) and the CPU time per op of the process over
// the same number of ops (steadier on a shared machine), with allocations.
//
//	go run ./bench/schedule [-events 5000] [-queries 10000] [-overrides 200] [-seed 1] [-test.benchtime 1s]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/schedule"
)

type options struct {
	events, queries, overrides int
	seed                       uint64
	year                       int
}

func main() {
	testing.Init() // -test.benchtime and friends for testing.Benchmark
	var o options
	flag.IntVar(&o.events, "events", 5000, "VEVENTs in the generated calendar")
	flag.IntVar(&o.queries, "queries", 10000, "instants to ask who is on call at")
	flag.IntVar(&o.overrides, "overrides", 200, "Slack overrides merged over the calendar")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed of the calendar and the instants")
	flag.IntVar(&o.year, "year", 2026, "the calendar's year")
	flag.Parse()
	if o.events < 10 || o.queries < 1 || o.overrides < 0 {
		fmt.Fprintln(os.Stderr, "bench/schedule: need -events >= 10, -queries >= 1, -overrides >= 0")
		os.Exit(2)
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/schedule:", err)
		os.Exit(1)
	}
}

func run(o options, out, progress io.Writer) error {
	loc, err := time.LoadLocation(genTZ)
	if err != nil {
		return fmt.Errorf("load zone %s: %w", genTZ, err)
	}
	r := rand.New(rand.NewPCG(o.seed, 2026))
	gen := generate(r, o.events, o.year, loc)
	overrides := genOverrides(r, o.overrides, gen.From, gen.To)
	instants := make([]time.Time, o.queries)
	span := int64(gen.To.Sub(gen.From))
	for i := range instants {
		instants[i] = gen.From.Add(time.Duration(r.Int64N(span)))
	}

	loadStart := loadAvg()

	// Check before timing.
	cal, err := schedule.ParseCalendar(gen.Data, loc)
	if err != nil {
		return fmt.Errorf("parse the generated calendar: %w", err)
	}
	expanded := cal.Shifts(gen.From, gen.To)
	if diff := compareShifts(expanded, gen.Want); diff != "" {
		return fmt.Errorf("expansion differs from the generator's shifts: %s", diff)
	}
	merged := schedule.Merge(expanded, overrides)
	ix := schedule.NewIndex(merged)
	answers := 0
	for i, t := range instants {
		got := ix.At(t)
		answers += len(got)
		if i%10 == 0 && !slices.Equal(got, scanAt(merged, t)) {
			return fmt.Errorf("index At(%s) differs from a scan", t)
		}
	}

	type step struct {
		name string
		per  string      // what one op is
		op   func(i int) // the i-th op
	}
	steps := []step{
		{"parse: `ParseCalendar`", "calendar", func(int) {
			if _, err := schedule.ParseCalendar(gen.Data, loc); err != nil {
				panic(err) // parsed above: cannot happen
			}
		}},
		{"expand the year: `Calendar.Shifts`", "year", func(int) { cal.Shifts(gen.From, gen.To) }},
		{fmt.Sprintf("`Merge` with %d overrides", o.overrides), "merge", func(int) { schedule.Merge(expanded, overrides) }},
		{"index build: `NewIndex`", "build", func(int) { schedule.NewIndex(merged) }},
		{"`Index.At`", "query", func(i int) { ix.At(instants[i%len(instants)]) }},
		{"`Index.Between`, 7 days", "query", func(i int) {
			t := instants[i%len(instants)]
			ix.Between(t, t.AddDate(0, 0, 7))
		}},
		{"reference: At by scanning every merged shift", "query", func(i int) { scanAt(merged, instants[i%len(instants)]) }},
	}
	results := make([]testing.BenchmarkResult, len(steps))
	cpu := make([]time.Duration, len(steps))
	for i, s := range steps {
		fmt.Fprintf(progress, "bench/schedule: %s ...\n", s.name)
		results[i] = testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				s.op(n)
				n++
			}
		})
		// The same number of ops again, timed in CPU time of the process
		// (all threads, the garbage collector's too): steadier than wall
		// time on a shared machine.
		before := processCPU()
		for n := range results[i].N {
			s.op(n)
		}
		cpu[i] = (processCPU() - before) / time.Duration(results[i].N)
	}

	st := gen.Stats
	fmt.Fprintf(out, "Calendar: %d VEVENTs, %.1f MB of iCalendar text: %d recurring series (%d with an EXDATE), "+
		"%d RECURRENCE-ID overrides (%d of them cancelled), %d single events (%d all-day, %d with DURATION, %d named by ATTENDEE). "+
		"Expanded over %d: **%d shifts**; merged with %d Slack overrides: %d shifts; "+
		"`At` returns %.1f shifts on average (people on call at once).\n\n",
		st.Events, float64(len(gen.Data))/1e6, st.Series, st.ExDates, st.Overrides, st.Cancelled,
		st.Singles, st.AllDay, st.Duration, st.Attendee,
		o.year, len(expanded), o.overrides, len(merged), float64(answers)/float64(len(instants)))
	fmt.Fprintln(out, "| step | per | time/op | ns/op | CPU time/op | allocs/op | bytes/op | runs |")
	fmt.Fprintln(out, "|---|---|--:|--:|--:|--:|--:|--:|")
	for i, s := range steps {
		res := results[i]
		fmt.Fprintf(out, "| %s | %s | %s | %d | %s | %d | %d | %d |\n", s.name, s.per,
			human(time.Duration(res.NsPerOp())), res.NsPerOp(), human(cpu[i]), res.AllocsPerOp(), res.AllocedBytesPerOp(), res.N)
	}
	load := time.Duration(results[0].NsPerOp() + results[1].NsPerOp() + results[2].NsPerOp() + results[3].NsPerOp())
	fmt.Fprintf(out, "\nA full load (parse, expand, merge, index): %s. %d `At` queries: %s (%s each).\n\n",
		human(load), len(instants), human(time.Duration(results[4].NsPerOp()*int64(len(instants)))), human(time.Duration(results[4].NsPerOp())))
	fmt.Fprintf(out, "Load average at the start and the end: %s, %s.\n", loadStart, loadAvg())
	fmt.Fprintf(out, "Machine: %d CPUs (`nproc`), %s, %s %s/%s; %s.\n", runtime.NumCPU(), cpuModel(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(out, "Command: `go run ./bench/schedule -events %d -queries %d -overrides %d -seed %d`\n",
		o.events, o.queries, o.overrides, o.seed)
	return nil
}

// scanAt is who is on call at t by looking at every shift.
func scanAt(shifts []oncall.Shift, t time.Time) []oncall.Shift {
	var out []oncall.Shift
	for _, s := range shifts {
		if !s.Start.After(t) && s.End.After(t) {
			out = append(out, s)
		}
	}
	return out
}

// compareShifts describes how got and want differ as sets of (person,
// start, end), or "" when they do not.
func compareShifts(got, want []oncall.Shift) string {
	key := func(s oncall.Shift) string {
		return s.Start.UTC().Format(time.RFC3339) + " " + s.End.UTC().Format(time.RFC3339) + " " + s.Person + " " + s.Source
	}
	count := map[string]int{}
	for _, s := range want {
		count[key(s)]++
	}
	for _, s := range got {
		count[key(s)]--
	}
	var missing, extra []string
	for k, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, k)
		}
		for ; n < 0; n++ {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("got %d shifts, want %d; %d missing (first: %v), %d unexpected (first: %v)",
		len(got), len(want), len(missing), first(missing, 5), len(extra), first(extra, 5))
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func human(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.2f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average from /proc/loadavg, or "?".
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
