package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/integrations"
	"github.com/oncallbot/oncall/integrations/twilio"
	"github.com/oncallbot/oncall/queue"
	"github.com/oncallbot/oncall/schedule"
	"github.com/oncallbot/oncall/storage"
)

// serveOptions is everything `oncall serve` reads from flags and environment.
type serveOptions struct {
	ConfigPath  string
	Listen      string
	DataDir     string
	DatabaseURL string
	NATSURL     string
	// NATSReplicas is the replica count of the streams on an external
	// cluster (ONCALL_NATS_REPLICAS; 3 on a three-node cluster).
	NATSReplicas int
	// PublicURL is where people reach this server (ONCALL_PUBLIC_URL), for
	// the calendar feed links shown in Slack.
	PublicURL string
	Slack     bot.Config
	Twilio    twilioOptions
	Lookup    env // for ${VAR} in the config file

	// DeliveryLease bounds one page attempt (ONCALL_DELIVERY_LEASE): a
	// page left half-sent longer than this by a replica that died is
	// checked with the provider and sent again if it did not go out.
	DeliveryLease time.Duration

	// onListen, when set, is told the bound address (tests listen on :0).
	onListen func(net.Addr)
	// clock, when set, is the escalation engine's clock (tests move it).
	clock escalation.Clock
	// tuneWorker, when set, adjusts the delivery worker's settings (tests
	// shorten the backoff).
	tuneWorker func(*escalation.WorkerConfig)
}

func parseServeFlags(name string, args []string, stderr io.Writer, lookup env) (serveOptions, error) {
	o := serveOptions{
		DatabaseURL: lookup.get("DATABASE_URL", ""),
		NATSURL:     lookup.get("NATS_URL", ""),
		Slack: bot.Config{
			BotToken: lookup.get("SLACK_BOT_TOKEN", ""),
			AppToken: lookup.get("SLACK_APP_TOKEN", ""),
			APIURL:   lookup.get("SLACK_API_URL", ""),
		},
		Twilio: twilioFromEnv(lookup),
		Lookup: lookup,
	}
	if v := lookup.get("ONCALL_NATS_REPLICAS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			return o, fmt.Errorf("ONCALL_NATS_REPLICAS: %q is not a replica count from 1 to 5", v)
		}
		o.NATSReplicas = n
	}
	o.PublicURL = lookup.get("ONCALL_PUBLIC_URL", "")
	if v := lookup.get("ONCALL_DELIVERY_LEASE", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return o, fmt.Errorf("ONCALL_DELIVERY_LEASE: %q is not a duration of at least 1s (e.g. 60s)", v)
		}
		o.DeliveryLease = d
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ConfigPath, "config", lookup.get("ONCALL_CONFIG", "oncall.yaml"), "config file (env ONCALL_CONFIG)")
	fs.StringVar(&o.Listen, "listen", lookup.get("ONCALL_LISTEN", ":8080"), "HTTP listen address (env ONCALL_LISTEN)")
	fs.StringVar(&o.DataDir, "data-dir", lookup.get("ONCALL_DATA_DIR", "data"), "where the embedded NATS keeps its files (env ONCALL_DATA_DIR)")
	return o, parseFlags(fs, args)
}

func runServe(ctx context.Context, args []string, stderr io.Writer, lookup env, log *slog.Logger) error {
	o, err := parseServeFlags("serve", args, stderr, lookup)
	if err != nil {
		return err
	}
	if o.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set (e.g. postgres://oncall:secret@localhost:5432/oncall)")
	}
	return serve(ctx, o, log)
}

// serve runs every part in one process until ctx is done, then shuts down in
// order: stop taking requests, let the consumers finish the message in hand,
// close the queue, close the database.
//
// Ingest needs the queue but not the database: the HTTP listener starts
// before the database is reached, so alerts are accepted (and kept in
// JetStream) while Postgres is down, and processed when it returns.
func serve(ctx context.Context, o serveOptions, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg, err := config.Load(o.ConfigPath, o.Lookup)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	slackOn, err := slackConfigured(o.Slack)
	if err != nil {
		return err
	}
	if !slackOn {
		log.Warn("Slack is not configured (SLACK_BOT_TOKEN and SLACK_APP_TOKEN unset): running without Slack; incidents are stored but not posted")
	}
	twilioOn, err := o.Twilio.configured()
	if err != nil {
		return err
	}
	logPagingSetup(log, cfg, slackOn, twilioOn, o.PublicURL)
	if o.DeliveryLease > 0 && o.DeliveryLease < 30*time.Second {
		log.Warn("ONCALL_DELIVERY_LEASE is shorter than a slow provider call (up to 25s): a page still in flight may be checked and sent again",
			"lease", o.DeliveryLease)
	}
	integs := cfg.OncallIntegrations()
	defs, err := scheduleDefinitions(cfg)
	if err != nil {
		return err
	}

	q, err := queue.Open(ctx, queue.Options{URL: o.NATSURL, DataDir: o.DataDir, Replicas: o.NATSReplicas, Logger: log})
	if err != nil {
		return fmt.Errorf("open queue: %w", err)
	}
	defer q.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), q.Collector())

	var db atomic.Pointer[storage.DB] // set once the database is reached
	mux := http.NewServeMux()
	// Leave room for the message headers within the server's limit.
	maxBatch := integrations.WithMaxBatchBytes(q.MaxPayload() - 4<<10)
	// Told once an hour that an integration is over its rate limit: the
	// bot, once Slack is up.
	var rateNotice atomic.Pointer[integrations.RateLimitNotice]
	ingest := integrations.NewHandler(integs, q, log, reg, maxBatch,
		integrations.WithRateLimitNotice(func(ctx context.Context, in oncall.Integration, perMinute int) {
			if n := rateNotice.Load(); n != nil {
				(*n)(ctx, in, perMinute)
			}
		}))
	ingest.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		readyz(w, r, q, db.Load(), true)
	})
	// Load balancers should use /readyz/ingest: taking alerts needs only the
	// queue, and a database outage must not take the webhook offline.
	mux.HandleFunc("GET /readyz/ingest", func(w http.ResponseWriter, r *http.Request) {
		readyz(w, r, q, nil, false)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // a body trickled in slower than this is dropped
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "integrations", len(integs))
	if o.onListen != nil {
		o.onListen(ln.Addr())
	}

	d, err := connectDatabase(ctx, o.DatabaseURL, integs, log)
	if err != nil {
		shutdownHTTP(srv, log)
		if ctx.Err() != nil {
			return nil // stopped while waiting for the database
		}
		return err
	}
	defer d.Close()
	db.Store(d)
	ingest.SetBatchOutcomes(d)

	schedules := schedule.NewService(defs, d, &http.Client{Timeout: 30 * time.Second}, log)
	plans := escalation.NewPlans(cfg)
	engine, err := escalation.NewEngine(escalation.EngineConfig{
		Store: d, Chains: escalation.ChainsFromConfig(cfg), Schedules: schedules, People: plans,
		Notifier: q, Deliveries: d, Queue: q, Logger: log, Registerer: reg, Clock: o.clock,
	})
	if err != nil {
		shutdownHTTP(srv, log)
		return err
	}
	svc := escalation.NewService(d, q, engine, log, reg)
	senders := map[oncall.NotifyChannel]escalation.Sender{}
	book := phoneBook{cfg: cfg}
	// Load the calendars before anything answers from them: an empty
	// schedule would read as "nobody on call" and warn about gaps.
	if err := schedules.Load(ctx); err != nil {
		log.Warn("some schedules could not be loaded; answering from what did", "err", err)
	}
	secret, err := d.Secret(ctx, "calendar-feeds")
	if err != nil {
		shutdownHTTP(srv, log)
		if ctx.Err() != nil {
			return nil // stopped meanwhile
		}
		return err
	}
	feeds := schedule.NewCalendars(secret, schedules, schedulePeople(cfg), log)
	feeds.Register(mux)
	var workers sync.WaitGroup
	// A consumer that stops while serving means alerts would be accepted
	// and never processed: stop the process so that it is restarted.
	fatal := make(chan error, 3)
	consume := func(name string, run func() error) {
		workers.Go(func() {
			if err := run(); err != nil && ctx.Err() == nil {
				fatal <- fmt.Errorf("%s stopped: %w", name, err)
			}
		})
	}
	syncIncident := func(ctx context.Context, id int64) error { return nil }
	if slackOn {
		slackCfg := bot.Config{BotToken: o.Slack.BotToken, AppToken: o.Slack.AppToken, APIURL: o.Slack.APIURL, Logger: log}
		withSchedules := slackCfg
		withSchedules.Schedules, withSchedules.Overrides = schedules, d
		withSchedules.Users, withSchedules.Admins = botUsers(cfg), cfg.Admins
		withSchedules.ScheduleChannels = map[string]string{}
		targets := map[string]bot.AnnounceTarget{}
		for _, def := range defs {
			withSchedules.ScheduleChannels[def.Name] = def.Channel
			targets[def.Name] = bot.AnnounceTarget{Channel: def.Channel, Usergroup: def.Usergroup, Location: def.Location}
		}
		withSchedules.Alerts = q
		withSchedules.Maintenance = d
		withSchedules.IntegrationChannels = map[string]string{}
		for _, it := range integs {
			withSchedules.Integrations = append(withSchedules.Integrations, it.Name)
			withSchedules.IntegrationChannels[it.Name] = it.Channel
		}
		b, berr := bot.New(withSchedules, svc, d)
		var ann *bot.Announcer
		if berr == nil {
			b.SetFeeds(feeds.Links(o.PublicURL, b.SlackUser))
			senders[oncall.NotifySlack] = b.Pager()
			book.slackUser = b.SlackUser
			notice := integrations.RateLimitNotice(b.RateLimitNotice)
			rateNotice.Store(&notice)
			ann, berr = bot.NewAnnouncer(bot.AnnouncerConfig{Slack: slackCfg, Schedules: schedules, Targets: targets, Store: d, SlackUser: b.LookupSlackUser})
		}
		if berr != nil {
			err = fmt.Errorf("start Slack: %w", berr)
		} else {
			syncIncident = b.SyncIncident
			workers.Go(func() {
				if err := b.Run(ctx); err != nil && ctx.Err() == nil {
					log.Error("Slack connection stopped; alerts are still accepted and stored", "err", err)
				}
			})
			workers.Go(func() {
				if err := ann.Run(ctx); err != nil && ctx.Err() == nil {
					log.Error("schedule announcements stopped", "err", err)
				}
			})
		}
	}
	if err == nil && twilioOn {
		err = startTwilio(o, log, mux, svc, d, book, senders)
	}
	var worker *escalation.Worker
	if err == nil {
		wc := escalation.WorkerConfig{
			Store: d, Senders: senders, Phones: plans, Notifier: q, Wake: engine.Wake, Logger: log, Registerer: reg,
			Lease: o.DeliveryLease,
		}
		if o.tuneWorker != nil {
			o.tuneWorker(&wc)
		}
		worker, err = escalation.NewWorker(wc)
	}
	if err == nil {
		workers.Go(func() {
			if err := schedules.Run(ctx); err != nil {
				log.Error("schedules stopped", "err", err)
			}
		})
		workers.Go(func() { engine.Run(ctx) })
		watcher := escalation.NewHeartbeatWatcher(d, integs, svc.Process, o.clock, log)
		workers.Go(func() { watcher.Run(ctx) })
		consume("pager", func() error { return q.ConsumeDeliveries(ctx, worker.Handle) })
		consume("alert processor", func() error { return q.ConsumeAlerts(ctx, svc.Process) })
		consume("notifier", func() error { return q.ConsumeIncidentChanges(ctx, syncIncident) })
		log.Info("ready", "slack", slackOn)
		select {
		case <-ctx.Done():
			log.Info("shutting down: draining requests and in-flight work")
		case err = <-serveErr:
			err = fmt.Errorf("http server: %w", err)
		case err = <-fatal:
			log.Error("shutting down", "err", err)
		}
	}
	// Stop taking alerts first, then let the workers finish what they hold;
	// the deferred closes of the database and the queue run after this.
	shutdownHTTP(srv, log)
	cancel()
	workers.Wait()
	log.Info("stopped")
	return err
}

// startTwilio registers Twilio's webhooks (SMS replies, voice keypresses,
// delivery receipts) on mux and adds the SMS and call senders.
func startTwilio(o serveOptions, log *slog.Logger, mux *http.ServeMux, svc *escalation.Service, d *storage.DB,
	book phoneBook, senders map[oncall.NotifyChannel]escalation.Sender) error {
	client, err := o.Twilio.client()
	if err != nil {
		return fmt.Errorf("start Twilio: %w", err)
	}
	pager := twilio.NewPager(client, o.Twilio.From, o.PublicURL, log)
	senders[oncall.NotifySMS], senders[oncall.NotifyCall] = pager, pager
	twilio.NewInbound(twilio.InboundConfig{
		AuthToken: o.Twilio.AuthToken, PublicURL: o.PublicURL,
		Incidents: incidentActions{svc, d}, Deliveries: d, People: book, Logger: log,
	}).Register(mux)
	log.Info("Twilio configured", "from", o.Twilio.From)
	return nil
}

// incidentActions is what Twilio's webhooks do to incidents: read them
// from the database, act through the service.
type incidentActions struct {
	*escalation.Service
	db *storage.DB
}

func (a incidentActions) Incident(ctx context.Context, id int64) (oncall.Incident, error) {
	return a.db.Incident(ctx, id)
}

// slackConfigured says whether Slack is on; one token without the other is
// a mistake worth stopping for.
func slackConfigured(c bot.Config) (bool, error) {
	switch {
	case c.BotToken == "" && c.AppToken == "":
		return false, nil
	case c.BotToken == "":
		return false, errors.New("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: set both (xoxb-... and xapp-...) or neither")
	case c.AppToken == "":
		return false, errors.New("SLACK_BOT_TOKEN is set but SLACK_APP_TOKEN is not: Socket Mode needs an app-level token (xapp-...)")
	}
	return true, nil
}

// connectDatabase waits for the database, migrates it and loads the
// integrations from the config. It retries with backoff until ctx is done:
// meanwhile ingest keeps accepting alerts into the queue.
func connectDatabase(ctx context.Context, url string, integs []oncall.Integration, log *slog.Logger) (*storage.DB, error) {
	// Open only parses the URL and sets up the pool: an error here is a
	// mistake in DATABASE_URL, not an outage, and waiting will not fix it.
	db, err := storage.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := prepareDatabase(ctx, db, integs)
		if err == nil {
			if attempt > 1 {
				log.Info("database reached", "attempts", attempt)
			}
			return db, nil
		}
		log.Warn("database not ready; alerts are queued until it is", "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			db.Close()
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 15*time.Second)
	}
}

// prepareDatabase migrates db and loads the integrations of the config.
func prepareDatabase(ctx context.Context, db *storage.DB, integs []oncall.Integration) error {
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	return db.SyncIntegrations(ctx, integs)
}

func shutdownHTTP(srv *http.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
}

// readyz answers 200 when the queue (and, with withDB, the database) answer.
func readyz(w http.ResponseWriter, r *http.Request, q *queue.Queue, db *storage.DB, withDB bool) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{"queue": "ok"}
	code := http.StatusOK
	if err := q.Ping(ctx); err != nil {
		status["queue"] = err.Error()
		code = http.StatusServiceUnavailable
	}
	if withDB {
		status["database"] = "ok"
		if db == nil {
			status["database"] = "not connected yet"
			code = http.StatusServiceUnavailable
		} else if err := db.Ping(ctx); err != nil {
			status["database"] = err.Error()
			code = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, status)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
