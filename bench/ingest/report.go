package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// row is one concurrency: the same load on both targets.
type row struct {
	concurrency   int
	baselineFirst bool
	oncall        loadResult
	baseline      loadResult
}

type report struct {
	started, finished time.Time
	args              []string
	opts              options
	machine           machine
	latency           latencyResult
	processing        processingResult
	rows              []row
}

type machine struct {
	cpus      int
	cpu       string
	kernel    string
	goVersion string
	postgres  string
	loadAvg   string // /proc/loadavg at the start: other work on the machine
}

func describeMachine(ctx context.Context, pgURL string) machine {
	m := machine{
		cpus:      runtime.NumCPU(),
		cpu:       cpuModel(),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		postgres:  "unknown",
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if conn, err := pgx.Connect(ctx, pgURL); err == nil {
		_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&m.postgres)
		_ = conn.Close(ctx)
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

func (r report) write(w io.Writer) {
	r.header(w)
	r.throughput(w)
	r.cpu(w)
	if !r.opts.ingestOnly {
		r.slackLatency(w)
		r.processingRate(w)
	}
}

func (r report) header(w io.Writer) {
	writeHeader(w, "oncall ingest benchmark", r.args, r.started, r.finished, r.machine)
}

// writeHeader writes a report's title, command, date and machine.
func writeHeader(w io.Writer, title string, args []string, started, finished time.Time, m machine) {
	fmt.Fprintf(w, "# %s\n\n", title)
	fmt.Fprintf(w, "- Command: `%s`\n", strings.Join(append([]string{"go run ./bench/ingest"}, args...), " "))
	fmt.Fprintf(w, "- Date: %s (the run took %s)\n", started.UTC().Format(time.RFC3339), finished.Sub(started).Round(time.Second))
	fmt.Fprintf(w, "- Machine: %d CPUs (nproc), %s, %s, %s, PostgreSQL %s (fsync and synchronous_commit on)\n",
		m.cpus, m.cpu, m.kernel, m.goVersion, m.postgres)
	fmt.Fprintf(w, "- Load average when the run started: %s\n\n", m.loadAvg)
}

func (r report) throughput(w io.Writer) {
	load := r.opts.duration.String()
	if r.opts.count > 0 {
		load = fmt.Sprintf("%d requests", r.opts.count)
	}
	fmt.Fprintf(w, "## Ingest: accepted (202) alerts per second\n\n")
	if r.opts.ingestOnly {
		fmt.Fprintf(w, "Diagnostic run (-ingest-only): oncall's database is unreachable, so it only ingests; "+
			"nothing is processed or posted.\n\n")
	}
	where := "in a process of its own"
	if r.opts.inProcess {
		where = "in the load generator's process (-baseline-in-process)"
	}
	fmt.Fprintf(w, "Load per target and row: %s, one alert after the other per sender over keep-alive connections; "+
		"oncall is a fresh subprocess per row, warmed up with %d alerts; the baseline runs %s. "+
		"Latency is from sending a request to reading its whole answer.\n\n",
		load, r.opts.warmup, where)
	fmt.Fprintln(w, "| senders | first | oncall /s | oncall p50 | oncall p99 | baseline /s | baseline p50 | baseline p99 | oncall / baseline | failed (oncall, baseline) |")
	fmt.Fprintln(w, "|--:|--|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, row := range r.rows {
		o, b := row.oncall, row.baseline
		ratio := 0.0
		if b.rate() > 0 {
			ratio = o.rate() / b.rate()
		}
		first := "oncall"
		if row.baselineFirst {
			first = "baseline"
		}
		fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %.0f | %s | %s | **%.2f** | %d, %d |\n", row.concurrency, first,
			o.rate(), ms(percentile(o.latencies, 0.5)), ms(percentile(o.latencies, 0.99)),
			b.rate(), ms(percentile(b.latencies, 0.5)), ms(percentile(b.latencies, 0.99)),
			ratio, o.failed, b.failed)
	}
	for _, row := range r.rows {
		if e := row.oncall.firstErr; e != "" {
			fmt.Fprintf(w, "\nFirst failure, oncall at %d senders: %s\n", row.concurrency, e)
		}
		if e := row.baseline.firstErr; e != "" {
			fmt.Fprintf(w, "\nFirst failure, baseline at %d senders: %s\n", row.concurrency, e)
		}
	}
	fmt.Fprintln(w)
}

func (r report) cpu(w io.Writer) {
	fmt.Fprintf(w, "### CPU time per accepted alert\n\n")
	fmt.Fprintf(w, "User and system time from /proc during each load, divided by the alerts accepted; "+
		"oncall's includes the processing it did meanwhile. The load generator's is its CPU per request while loading "+
		"oncall and while loading the baseline.\n\n")
	fmt.Fprintln(w, "| senders | oncall process | its PostgreSQL | baseline process | load generator (oncall, baseline) |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|")
	for _, row := range r.rows {
		o, b := row.oncall, row.baseline
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s, %s |\n", row.concurrency,
			us(o.cpuPerAlert(o.serverCPU)), us(o.cpuPerAlert(o.dbCPU)), us(b.cpuPerAlert(b.serverCPU)),
			us(o.cpuPerAlert(o.clientCPU)), us(b.cpuPerAlert(b.clientCPU)))
	}
	fmt.Fprintln(w)
}

func us(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

func (r report) slackLatency(w io.Writer) {
	l := r.latency
	fmt.Fprintf(w, "## Alert-to-Slack latency\n\n")
	fmt.Fprintf(w, "%d alerts a second for %s, each its own incident, round robin over %d integrations and channels "+
		"(%.2g a second per channel: the bot paces posts to about one a second per channel, Slack's limit), "+
		"on an otherwise idle oncall; from the 202 to the fake Slack recording the chat.postMessage.\n\n",
		l.rate, r.opts.latencyTime, l.channels, float64(l.rate)/float64(l.channels))
	fmt.Fprintln(w, "| alerts sent | accepted | posted | p50 | p99 | max |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|")
	maxLatency := time.Duration(0)
	if n := len(l.latencies); n > 0 {
		maxLatency = l.latencies[n-1]
	}
	fmt.Fprintf(w, "| %d | %d | %d | %s | %s | %s |\n\n", l.sent, l.accepted, l.posted,
		ms(percentile(l.latencies, 0.5)), ms(percentile(l.latencies, 0.99)), ms(maxLatency))
}

func (r report) processingRate(w io.Writer) {
	p := r.processing
	fmt.Fprintf(w, "## Processing: a burst to PostgreSQL and Slack\n\n")
	fmt.Fprintf(w, "%d alerts, each its own incident, round robin over %d integrations and channels, "+
		"sent by 16 senders as fast as accepted; then the time from the start of the burst until the last incident "+
		"is stored (its created_at) and until it is posted to the fake Slack. The bot posts at most about one message "+
		"a second to a channel (Slack's limit), so posting is bounded by %d a second here.\n\n",
		r.opts.processing, p.channels, p.channels)
	fmt.Fprintln(w, "| accepted | accepted /s | incidents stored | stored /s | incidents posted | posted /s |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|")
	fmt.Fprintf(w, "| %d | %.0f | %d of %d | %.0f | %d of %d | %.0f |\n\n", p.load.accepted, p.load.rate(),
		p.stored, p.incidents, p.perSecond(p.stored, p.lastStored), p.posted, p.incidents, p.perSecond(p.posted, p.lastPosted))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
