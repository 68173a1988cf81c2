// Command escalation measures the escalation engine and the delivery
// workers under load (issue 4; the figures are in docs/benchmarks.md):
// many open incidents with running chains, each step's lateness against
// its due time, and deliveries per second through the NOTIFY queue.
//
// It starts a throwaway PostgreSQL (fsync on) and an embedded NATS server,
// opens -incidents incidents whose first steps fall due over -spread, and
// runs -engines engines and the delivery workers in this process until
// every chain has run out. The chain is three notify steps with -wait
// between them, so every incident has a step due three times. Pages go to
// a sender that accepts at once: the figures are oncall's own costs, not a
// provider's.
//
//	go run ./bench/escalation [-incidents 10000] [-spread 20s] [-wait 20s] [-engines 1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/queue"
	"github.com/oncallbot/oncall/storage"
)

type options struct {
	incidents int
	spread    time.Duration
	wait      time.Duration
	engines   int
	workers   int
	lead      time.Duration // time to open the incidents before the first is due
}

func main() {
	var o options
	flag.IntVar(&o.incidents, "incidents", 10000, "open incidents with a running chain")
	flag.DurationVar(&o.spread, "spread", 20*time.Second, "the first steps fall due evenly over this long")
	flag.DurationVar(&o.wait, "wait", 20*time.Second, "wait between the chain's steps")
	flag.IntVar(&o.engines, "engines", 1, "engines sharing the database (replicas)")
	flag.IntVar(&o.workers, "workers", 8, "delivery workers")
	flag.DurationVar(&o.lead, "lead", 60*time.Second, "time allowed to open the incidents before the first step is due")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintln(os.Stderr, "bench/escalation:", err)
		os.Exit(1)
	}
}

// acceptingSender takes every page at once and counts them.
type acceptingSender struct {
	sent  atomic.Int64
	mu    sync.Mutex
	first time.Time
	last  time.Time
}

func (s *acceptingSender) Send(_ context.Context, p oncall.Page) (string, error) {
	n := s.sent.Add(1)
	now := time.Now()
	s.mu.Lock()
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	s.mu.Unlock()
	return fmt.Sprintf("bench-%d", n), nil
}

func (s *acceptingSender) Find(context.Context, oncall.Page, time.Time) (string, bool, error) {
	return "", false, nil
}

// lateness collects each step's lateness.
type lateness struct {
	mu   sync.Mutex
	late []time.Duration
}

func (l *lateness) observe(due, taken time.Time) {
	l.mu.Lock()
	l.late = append(l.late, taken.Sub(due))
	l.mu.Unlock()
}

func (l *lateness) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.late)
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	fmt.Fprintln(os.Stderr, "starting PostgreSQL (durable) and NATS")
	pg, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer pg.Stop()
	url, err := pg.CreateDatabase(ctx, "bench")
	if err != nil {
		return err
	}
	db, err := storage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	const chainName = "bench"
	integ := oncall.Integration{Name: "bench", Kind: "webhook", Token: "bench-token-0123456789", Channel: "C0BENCH",
		Escalation: chainName}
	if err := db.SyncIntegrations(ctx, []oncall.Integration{integ}); err != nil {
		return err
	}
	q, err := queue.Open(ctx, queue.Options{Logger: log, Workers: o.workers})
	if err != nil {
		return err
	}
	defer q.Close()

	chain := oncall.EscalationChain{Name: chainName, Steps: []oncall.EscalationStep{
		{Kind: oncall.StepNotifyUsers, Users: []string{"U0FIRST"}},
		{Kind: oncall.StepWait, Wait: o.wait},
		{Kind: oncall.StepNotifyUsers, Users: []string{"U0SECOND"}},
		{Kind: oncall.StepWait, Wait: o.wait},
		{Kind: oncall.StepNotifyChannel, Mention: "here"},
	}}
	start := time.Now().Add(o.lead)
	fmt.Fprintf(os.Stderr, "opening %d incidents, first steps due from %s over %s\n", o.incidents,
		start.Format(time.TimeOnly), o.spread)
	if err := openIncidents(ctx, db, o, integ, start); err != nil {
		return err
	}
	opened := time.Now()
	if opened.After(start) {
		return fmt.Errorf("opening the incidents took past the first due time (%s late): raise -lead", opened.Sub(start))
	}

	late := &lateness{}
	sender := &acceptingSender{}
	plans := escalation.NewPlans(&config.Config{}) // everyone: a Slack message
	var engines []*escalation.Engine
	for range o.engines {
		e, err := escalation.NewEngine(escalation.EngineConfig{
			Store: db, Chains: map[string]oncall.EscalationChain{chainName: chain}, Schedules: noSchedules{},
			People: plans, Deliveries: db, Queue: q, Logger: log, OnStep: late.observe,
		})
		if err != nil {
			return err
		}
		engines = append(engines, e)
	}
	worker, err := escalation.NewWorker(escalation.WorkerConfig{Store: db, Logger: log,
		Senders: map[oncall.NotifyChannel]escalation.Sender{oncall.NotifySlack: sender}})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, e := range engines {
		wg.Go(func() { e.Run(runCtx) })
	}
	consumeErr := make(chan error, 1)
	wg.Go(func() { consumeErr <- q.ConsumeDeliveries(runCtx, worker.Handle) })

	steps := 3 * o.incidents
	deadline := start.Add(o.spread + 2*o.wait + 5*time.Minute)
	for late.count() < steps || sender.sent.Load() < int64(steps) {
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			return fmt.Errorf("gave up: %d of %d steps taken, %d pages sent", late.count(), steps, sender.sent.Load())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-consumeErr:
			return fmt.Errorf("delivery consumer stopped: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	cancel()
	wg.Wait()
	if taken, sent := late.count(), sender.sent.Load(); taken != steps || sent != int64(steps) {
		return fmt.Errorf("%d steps taken and %d pages sent, want %d each: a step or a page went twice", taken, sent, steps)
	}
	report(o, late.late, sender)
	return nil
}

// openIncidents opens the incidents, their first steps due evenly over
// o.spread from start, with a few goroutines.
func openIncidents(ctx context.Context, db *storage.DB, o options, integ oncall.Integration, start time.Time) error {
	const writers = 8
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(o.incidents) || ctx.Err() != nil {
					return
				}
				due := start.Add(time.Duration(i) * o.spread / time.Duration(o.incidents))
				id := fmt.Sprintf("bench-%d", i)
				b := oncall.AlertBatch{ID: id, Integration: integ.Name, Kind: integ.Kind, ReceivedAt: due,
					GroupKey: id, Status: oncall.AlertFiring, Title: "bench " + id, Severity: oncall.SeverityWarning,
					Alerts: []oncall.Alert{{Fingerprint: id, Status: oncall.AlertFiring, Title: "bench " + id}}}
				if _, err := db.RecordBatch(ctx, b); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

type noSchedules struct{}

func (noSchedules) OnCall(context.Context, string, time.Time) ([]oncall.Shift, error) {
	return nil, nil
}

func report(o options, late []time.Duration, s *acceptingSender) {
	slices.Sort(late)
	pct := func(p float64) time.Duration { return late[min(len(late)-1, int(p*float64(len(late))))] }
	host, _ := os.Hostname()
	fmt.Printf("Machine: %s, %d CPUs (%s/%s), %s\n\n", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("Command: go run ./bench/escalation -incidents %d -spread %s -wait %s -engines %d -workers %d\n\n",
		o.incidents, o.spread, o.wait, o.engines, o.workers)
	fmt.Println("| incidents | engines | steps taken | lateness p50 | p99 | max | pages sent | pages/s (first to last) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	span := s.last.Sub(s.first)
	rate := float64(s.sent.Load()) / max(span.Seconds(), 0.001)
	fmt.Printf("| %d | %d | %d | %s | %s | %s | %d | %.0f over %s |\n", o.incidents, o.engines, len(late),
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), late[len(late)-1].Round(time.Millisecond),
		s.sent.Load(), rate, span.Round(time.Millisecond))
}
