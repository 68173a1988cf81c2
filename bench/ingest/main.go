// Command ingest measures oncall's ingest throughput against a ceiling,
// its alert-to-Slack latency and how fast it processes a burst, in one run
// (issue 2; the figures are in docs/benchmarks.md).
//
// It builds ./cmd/oncall and starts a throwaway PostgreSQL (fsync on) and a
// fake Slack. The ceiling, the baseline, is a bare HTTP handler that reads
// the body, publishes it to JetStream through the queue package and answers
// 202; it runs in a process of its own (this program with -serve-baseline).
// Then:
//
//  1. On a fresh `oncall serve`: alerts at a modest rate, spread over the
//     channels, timed from the 202 to the fake Slack recording the post;
//     then a burst, timed until its incidents are stored and posted.
//  2. For each concurrency (1, 16, 64 senders): the same load, for a fixed
//     time, to the baseline and to a fresh `oncall serve`, the order
//     alternating between rows; accepted alerts per second, latency and
//     CPU time per alert of each.
//
// With -storm it measures an alert storm instead (issue 5): 10,000 alerts
// for one group in 10 seconds through one webhook integration, on a fresh
// `oncall serve` with a rate limit high enough to accept them all, then on
// another with the default limit; what reaches PostgreSQL and the fake
// Slack, and how long after the last 202 the incident shows every alert.
//
// It prints Markdown tables, the machine and the command. All traffic stays
// on 127.0.0.1, and everything it started is stopped on exit, also on error
// or interrupt.
//
//	go run ./bench/ingest [-duration 10s] [-concurrency 1,16,64] [-ingest-only]
//	go run ./bench/ingest -storm [-storm-alerts 10000] [-storm-rate 1000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// paceRefill is how long the bot's per-channel post allowance (a burst of
// a few posts, then one a second) takes to refill.
const paceRefill = 6 * time.Second

type options struct {
	duration     time.Duration // per target and concurrency
	count        int           // requests per target and concurrency; overrides duration
	concurrency  []int
	warmup       int // requests to each fresh target before measuring
	latencyRate  int // alerts per second in the alert-to-Slack phase
	latencyTime  time.Duration
	processing   int // alerts in the processing phase
	channels     int // integrations, each with its own Slack channel
	drainTimeout time.Duration
	timeout      time.Duration
	ingestOnly   bool   // run oncall without a database: ingest alone
	inProcess    bool   // run the baseline in this process
	serve        bool   // be the baseline process
	logDir       string // keep the oncall subprocesses' logs here
	storm        bool   // run the alert storm instead
	stormAlerts  int
	stormRate    int // alerts a second
	stormSenders int
	stormLimit   int // the integration's rate_limit in the first storm run
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingest:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	switch {
	case o.serve:
		err = serveBaseline(ctx, log, os.Stdout)
	case o.storm:
		err = runStorm(ctx, o, log, os.Stdout)
	default:
		err = run(ctx, o, log, os.Stdout)
	}
	cancel()
	stop()
	if err != nil {
		log.Error("benchmark failed", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "load time per target and concurrency")
	fs.IntVar(&o.count, "count", 0, "requests per target and concurrency instead of -duration (0: use -duration)")
	conc := fs.String("concurrency", "1,16,64", "comma-separated numbers of concurrent senders")
	fs.IntVar(&o.warmup, "warmup", 300, "requests to each fresh target before measuring")
	fs.IntVar(&o.latencyRate, "latency-rate", 20, "alerts per second in the alert-to-Slack phase")
	fs.DurationVar(&o.latencyTime, "latency-duration", 10*time.Second, "length of the alert-to-Slack phase")
	fs.IntVar(&o.processing, "processing", 2000, "alerts (each its own incident) in the processing phase")
	fs.IntVar(&o.channels, "channels", 40, "webhook integrations, each with its own Slack channel; alerts go round robin")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 3*time.Minute, "how long to wait for oncall to post the incidents of a phase")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.ingestOnly, "ingest-only", false, "diagnostic: run oncall with its database unreachable, so nothing but ingest runs; "+
		"skips the Slack phases")
	fs.BoolVar(&o.inProcess, "baseline-in-process", false, "run the baseline in this process, next to the load generator, "+
		"instead of in a process of its own like oncall")
	fs.BoolVar(&o.serve, "serve-baseline", false, "internal: serve the baseline and print its URL")
	fs.StringVar(&o.logDir, "log-dir", "", "copy the logs of the oncall subprocesses into this directory")
	fs.BoolVar(&o.storm, "storm", false, "measure an alert storm (alerts for one group through one integration) instead")
	fs.IntVar(&o.stormAlerts, "storm-alerts", 10000, "alerts in a storm")
	fs.IntVar(&o.stormRate, "storm-rate", 1000, "alerts a second in a storm")
	fs.IntVar(&o.stormSenders, "storm-senders", 50, "concurrent senders of a storm")
	fs.IntVar(&o.stormLimit, "storm-limit", 1000000, "the integration's rate_limit (a minute) in the first storm run; "+
		"the second runs with oncall's default")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.concurrency, err = parseInts(*conc); err != nil {
		return o, fmt.Errorf("-concurrency: %w", err)
	}
	if o.duration <= 0 && o.count <= 0 {
		return o, errors.New("-duration or -count must be positive")
	}
	if o.latencyRate <= 0 || o.latencyTime <= 0 || o.processing <= 0 || o.channels <= 0 {
		return o, errors.New("-latency-rate, -latency-duration, -processing and -channels must be positive")
	}
	if o.stormAlerts <= 0 || o.stormRate <= 0 || o.stormSenders <= 0 || o.stormLimit <= 0 {
		return o, errors.New("-storm-alerts, -storm-rate, -storm-senders and -storm-limit must be positive")
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// run sets everything up, measures, tears everything down (also on error)
// and writes the report to out.
func run(ctx context.Context, o options, log *slog.Logger, out io.Writer) (err error) {
	st, err := startStack(ctx, log, o.channels)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, st.close())
	}()
	baseTarget, closeBaseline, err := startBaselineTarget(ctx, log, o.inProcess)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, closeBaseline())
	}()

	rep := report{started: time.Now(), args: os.Args[1:], opts: o}
	rep.machine = describeMachine(ctx, st.pg.URL("postgres"))
	if _, err := runLoad(ctx, baseTarget, loadSpec{phase: "warm-baseline", concurrency: 4, count: o.warmup}); err != nil {
		return err
	}
	if !o.ingestOnly {
		if rep.latency, rep.processing, err = measurePipeline(ctx, o, log, st); err != nil {
			return err
		}
	}
	for i, c := range o.concurrency {
		r, err := measureConcurrency(ctx, o, log, st, baseTarget, c, i%2 == 1)
		if err != nil {
			return err
		}
		rep.rows = append(rep.rows, r)
	}
	rep.finished = time.Now()
	rep.write(out)
	return nil
}

// startWarm starts a fresh oncall instance and sends it the warm-up alerts;
// with a database, it waits until they are all in Slack.
func startWarm(ctx context.Context, o options, st *stack, name string) (_ *instance, err error) {
	in, err := st.startOncall(ctx, name, !o.ingestOnly, 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, in.close(o.logDir))
		}
	}()
	if o.warmup <= 0 {
		return in, nil
	}
	spec := loadSpec{phase: "warm-" + name, concurrency: 4, count: o.warmup}
	res, err := runLoad(ctx, in.target(), spec)
	if err != nil {
		return nil, err
	}
	if !o.ingestOnly {
		if _, err := in.waitDrained(ctx, spec.phase, res, o.drainTimeout); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	return in, nil
}

// measurePipeline measures, on one fresh instance, the alert-to-Slack
// latency at a modest rate, then how fast a burst is processed.
func measurePipeline(ctx context.Context, o options, log *slog.Logger, st *stack) (_ latencyResult, _ processingResult, err error) {
	in, err := startWarm(ctx, o, st, "pipeline")
	if err != nil {
		return latencyResult{}, processingResult{}, err
	}
	defer func() {
		err = errors.Join(err, in.close(o.logDir))
	}()
	// The warm-up used up the bot's per-channel allowance of posts; let it
	// refill so that the latency phase measures the pipeline, not pacing.
	select {
	case <-ctx.Done():
		return latencyResult{}, processingResult{}, ctx.Err()
	case <-time.After(paceRefill):
	}
	log.Info("measuring alert-to-Slack latency", "rate", o.latencyRate, "duration", o.latencyTime)
	lat, err := measureSlackLatency(ctx, in, o.latencyRate, o.latencyTime)
	if err != nil {
		return lat, processingResult{}, err
	}
	log.Info("measuring processing", "alerts", o.processing)
	proc, err := measureProcessing(ctx, in, o.processing, 16, o.drainTimeout)
	return lat, proc, err
}

// measureConcurrency runs the same load against the baseline and a fresh
// oncall instance, stopped right after its load so that its backlog does
// not weigh on the next measurement.
func measureConcurrency(ctx context.Context, o options, log *slog.Logger, st *stack, base target, c int, baselineFirst bool) (row, error) {
	r := row{concurrency: c, baselineFirst: baselineFirst}
	spec := func(name string) loadSpec {
		return loadSpec{phase: fmt.Sprintf("c%d-%s", c, name), concurrency: c, duration: o.duration, count: o.count, repeats: true}
	}
	measureBaseline := func() (err error) {
		log.Info("load", "target", base.name, "concurrency", c)
		r.baseline, err = runLoad(ctx, base, spec(base.name))
		logLoad(log, base.name, c, r.baseline)
		return err
	}
	if baselineFirst {
		if err := measureBaseline(); err != nil {
			return r, err
		}
	}
	in, err := startWarm(ctx, o, st, fmt.Sprintf("c%d", c))
	if err != nil {
		return r, err
	}
	log.Info("load", "target", "oncall", "concurrency", c)
	r.oncall, err = runLoad(ctx, in.target(), spec("oncall"))
	logLoad(log, "oncall", c, r.oncall)
	err = errors.Join(err, in.alive(), in.close(o.logDir))
	if err != nil || baselineFirst {
		return r, err
	}
	return r, measureBaseline()
}

func logLoad(log *slog.Logger, name string, c int, res loadResult) {
	log.Info("load done", "target", name, "concurrency", c, "accepted", res.accepted,
		"per_second", fmt.Sprintf("%.0f", res.rate()), "failed", res.failed)
}
