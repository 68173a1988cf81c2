package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall/internal/fakeslack"
)

// The alert storm (issue 5, -storm): many alerts for one group in a short
// time through one webhook integration. oncall should open one incident,
// post it to Slack once and update its message every few seconds with the
// count, never one message per alert; beyond the integration's rate limit
// it answers 429, and no alert it answered 202 is lost.

const (
	// stormLinger is how long a run keeps watching once oncall has stored
	// and shown every accepted alert: long enough for another update of
	// the message (the bot holds updates 3 s apart) to show, if one came.
	stormLinger = 7 * time.Second
	// stormPoll is how often a run reads the incident's count from
	// PostgreSQL. The Slack side is watched on every change of the fake.
	stormPoll = 50 * time.Millisecond
)

// stormRun is one storm on a fresh oncall instance.
type stormRun struct {
	name      string // also the dedup key of every alert, and the instance's name
	rateLimit int    // the integration's rate_limit; 0: oncall's default
	route     route  // the integration and its channel, used by this run alone

	load     stormLoad
	atEnd    stormCount // stored when the last answer was read
	final    stormCount // stored when the run stopped watching
	storedAt time.Time  // when alert_count reached load.accepted (the incident's updated_at); zero if never
	slack    slackCounts
	versions []shown // of the incident message: its post, then each update
	timedOut bool    // -drain-timeout passed before everything was stored and shown
}

// runStorm runs the storm twice, each on a fresh instance: with the rate
// limit of -storm-limit (high enough to accept everything), then with
// oncall's default, and writes the report to out.
func runStorm(ctx context.Context, o options, log *slog.Logger, out io.Writer) (err error) {
	st, err := startStack(ctx, log, 2)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, st.close())
	}()
	rep := stormReport{started: time.Now(), args: os.Args[1:], opts: o}
	rep.machine = describeMachine(ctx, st.pg.URL("postgres"))
	rep.runs = []stormRun{
		{name: "storm-high", rateLimit: o.stormLimit, route: st.routes[0]},
		{name: "storm-default", route: st.routes[1]},
	}
	for i := range rep.runs {
		if err := measureStorm(ctx, o, log, st, &rep.runs[i]); err != nil {
			return err
		}
	}
	rep.finished = time.Now()
	rep.write(out)
	return nil
}

// measureStorm starts an instance, sends the storm, then watches the
// incident in PostgreSQL and in the fake Slack until both show every
// accepted alert (and stormLinger more), or -drain-timeout passes.
func measureStorm(ctx context.Context, o options, log *slog.Logger, st *stack, r *stormRun) (err error) {
	in, err := st.startOncall(ctx, r.name, true, r.rateLimit)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, in.close(o.logDir))
	}()
	conn, err := pgx.Connect(ctx, in.dbURL)
	if err != nil {
		return fmt.Errorf("connect to the database of %s: %w", in.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	watch := &stormWatch{channel: r.route.channel, marker: "[" + r.name + "]"}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		// Never true: it records each state until stopWatch.
		_, _ = st.slack.WaitFor(watchCtx, func(s fakeslack.State) bool {
			watch.observe(s, time.Now())
			return false
		})
	}()
	defer func() {
		stopWatch()
		<-watching
	}()

	log.Info("storm", "run", r.name, "alerts", o.stormAlerts, "rate", o.stormRate, "senders", o.stormSenders,
		"rate_limit", r.rateLimit)
	url := in.base + "/integrations/webhook/" + r.route.token
	if r.load, err = sendStorm(ctx, url, r.name, o.stormAlerts, o.stormRate, o.stormSenders); err != nil {
		return err
	}
	log.Info("storm sent", "run", r.name, "accepted", r.load.accepted, "limited", r.load.limited, "other", r.load.other)
	if r.atEnd, err = readStormCount(ctx, conn, r.route.name); err != nil {
		return err
	}

	want := r.load.accepted
	deadline := time.Now().Add(o.drainTimeout)
	var settled time.Time // when both stores first showed want
	for {
		c, err := readStormCount(ctx, conn, r.route.name)
		if err != nil {
			return err
		}
		r.final = c
		if r.storedAt.IsZero() && c.alerts >= want {
			r.storedAt = c.updatedAt
		}
		_, shownOK := watch.shownAt(want)
		now := time.Now()
		if settled.IsZero() && !r.storedAt.IsZero() && shownOK {
			settled = now
		}
		if !settled.IsZero() && now.Sub(settled) >= stormLinger {
			break
		}
		if now.After(deadline) {
			r.timedOut = true
			log.Warn("storm: not every accepted alert stored and shown in time", "run", r.name,
				"accepted", want, "stored", c.alerts, "timeout", o.drainTimeout)
			break
		}
		if err := sleepCtx(ctx, stormPoll); err != nil {
			return fmt.Errorf("watch storm %s: %w", r.name, err)
		}
	}
	stopWatch()
	<-watching
	final := st.slack.State()
	watch.observe(final, time.Now())
	r.slack = countSlack(final, r.route.channel, watch.marker)
	r.versions = watch.snapshot()
	return in.alive()
}

// stormLoad is what the senders of a storm saw.
type stormLoad struct {
	sent         int
	accepted     int // 202
	limited      int // 429
	other        int // any other answer or a transport error
	firstOther   string
	retryAfter   string // of the first 429
	start, end   time.Time
	lastAccepted time.Time       // when the last 202 was read
	latencies    []time.Duration // of the 202s, sorted
}

func (l *stormLoad) record(s sent) {
	l.sent++
	switch {
	case s.err == nil && s.status == http.StatusAccepted:
		l.accepted++
		l.latencies = append(l.latencies, s.latency)
		if s.at.After(l.lastAccepted) {
			l.lastAccepted = s.at
		}
	case s.err == nil && s.status == http.StatusTooManyRequests:
		l.limited++
		if l.retryAfter == "" {
			l.retryAfter = s.retryAfter
		}
	default:
		l.other++
		if l.firstOther == "" {
			l.firstOther = s.describe()
		}
	}
}

func (l *stormLoad) merge(o stormLoad) {
	l.sent += o.sent
	l.accepted += o.accepted
	l.limited += o.limited
	l.other += o.other
	l.firstOther = cmp.Or(l.firstOther, o.firstOther)
	l.retryAfter = cmp.Or(l.retryAfter, o.retryAfter)
	if o.lastAccepted.After(l.lastAccepted) {
		l.lastAccepted = o.lastAccepted
	}
	l.latencies = append(l.latencies, o.latencies...)
}

// sendStorm sends total alerts with the same dedup key to url, paced to
// rate a second: request n is sent no earlier than n/rate after the start,
// by whichever of the senders is free, each over its own keep-alive
// connection. A slow answer delays no other sender.
func sendStorm(ctx context.Context, url, key string, total, rate, senders int) (stormLoad, error) {
	client := newClient(senders)
	defer client.CloseIdleConnections()
	interval := time.Second / time.Duration(rate)
	var (
		seq atomic.Int64
		mu  sync.Mutex
		res stormLoad
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range senders {
		wg.Go(func() {
			var mine stormLoad
			for {
				n := int(seq.Add(1) - 1)
				if n >= total || sleepCtx(ctx, time.Until(start.Add(time.Duration(n)*interval))) != nil {
					break
				}
				mine.record(sendAlert(ctx, client, url, stormAlert(key, n)))
			}
			mu.Lock()
			res.merge(mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.start, res.end = start, time.Now()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("storm %s: %w", key, err)
	}
	slices.Sort(res.latencies)
	return res, nil
}

// stormAlert is the n-th alert of a storm: the dedup key is the same for
// all, and in the title between brackets; the title also carries n, so
// that the message shows which alert is the latest.
func stormAlert(key string, n int) alert {
	pod := fmt.Sprintf("checkout-api-%d", n%7)
	body, _ := json.Marshal(webhookAlert{ // strings and a map of strings: cannot fail
		Title:    fmt.Sprintf("[%s] High 5xx rate on checkout-api (alert %d, pod %s)", key, n, pod),
		Message:  "5xx responses above 5% for 5 minutes: 7.3% of 12,408 requests failed. Runbook: restart the pod if the error budget burns faster than 2x.",
		Status:   "firing",
		DedupKey: key,
		Severity: "critical",
		Link:     "https://grafana.example.com/d/checkout/checkout-api?orgId=1&var-pod=" + pod,
		Labels: map[string]string{
			"service": "checkout-api", "env": "production", "region": "eu-west-1",
			"team": "payments", "alertname": "HighErrorRate", "pod": pod,
		},
	})
	return alert{key: key, hot: -1, body: body}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stormCount is what PostgreSQL holds for the storm's integration.
type stormCount struct {
	incidents int
	alerts    int       // sum of alert_count
	batches   int       // alert_batches stored
	updatedAt time.Time // the newest incident's updated_at
}

func readStormCount(ctx context.Context, conn *pgx.Conn, integration string) (stormCount, error) {
	var (
		c       stormCount
		updated *time.Time
	)
	err := conn.QueryRow(ctx, `
		SELECT count(i.id), coalesce(sum(i.alert_count), 0), max(i.updated_at),
		       (SELECT count(*) FROM alert_batches b WHERE b.integration_id = g.id)
		FROM integrations g LEFT JOIN incidents i ON i.integration_id = g.id
		WHERE g.name = $1
		GROUP BY g.id`, integration).Scan(&c.incidents, &c.alerts, &updated, &c.batches)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil // not synced from the config yet
	}
	if err != nil {
		return c, fmt.Errorf("read the incidents of %s: %w", integration, err)
	}
	if updated != nil {
		c.updatedAt = *updated
	}
	return c, nil
}

// shown is a version of the incident message: the count it shows (-1 if
// none) and when the fake Slack held it.
type shown struct {
	at    time.Time
	count int
	title int // the n of the alert its title shows, -1 if none
}

// stormWatch records the versions of a storm's incident message as the
// fake Slack's state changes.
type stormWatch struct {
	channel string
	marker  string // "[key]", in the message's text

	mu       sync.Mutex
	versions []shown
}

// observe records the versions of the incident message in st it has not
// seen yet. The first one's time is the message's ts (when the fake
// recorded the post); an update's is now, the first state holding it.
func (w *stormWatch) observe(st fakeslack.State, now time.Time) {
	m, ok := incidentMessage(st, w.channel, w.marker)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for v := len(w.versions); v <= len(m.History); v++ {
		text, blocks := m.Text, m.Blocks
		if v < len(m.History) {
			text, blocks = m.History[v].Text, m.History[v].Blocks
		}
		at := now
		if v == 0 {
			if t, ok := parseTS(m.TS); ok {
				at = t
			}
		}
		w.versions = append(w.versions, shown{at: at, count: shownCount(blocks), title: alertNumber(text)})
	}
}

// shownAt returns when the message first showed at least n alerts.
func (w *stormWatch) shownAt(n int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return firstShowing(w.versions, n)
}

func firstShowing(versions []shown, n int) (time.Time, bool) {
	for _, v := range versions {
		if v.count >= n {
			return v.at, true
		}
	}
	return time.Time{}, false
}

func (w *stormWatch) snapshot() []shown {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.versions)
}

// incidentMessage is the first top-level message in channel whose text
// holds marker.
func incidentMessage(st fakeslack.State, channel, marker string) (fakeslack.Message, bool) {
	for _, m := range st.TopLevel(channel) {
		if strings.Contains(m.Text, marker) {
			return m, true
		}
	}
	return fakeslack.Message{}, false
}

var (
	receivedRE = regexp.MustCompile(`(\d+) alerts? received`)
	alertNoRE  = regexp.MustCompile(`\(alert (\d+),`)
)

// shownCount is the count of a message's "N alerts received", -1 if none.
func shownCount(blocks json.RawMessage) int {
	return firstNumber(receivedRE, string(blocks))
}

// alertNumber is the n of the storm alert a message's text names, -1 if none.
func alertNumber(text string) int {
	return firstNumber(alertNoRE, text)
}

func firstNumber(re *regexp.Regexp, s string) int {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// slackCounts is what the bot sent to a storm's channel.
type slackCounts struct {
	messages    int // top-level messages of the incident (marker in the text)
	posts       int // chat.postMessage of the incident message
	otherPosts  int // other top-level chat.postMessage (the rate limit notice)
	otherText   string
	replies     int // chat.postMessage in a thread
	updates     int // chat.update
	rateLimited int // calls answered HTTP 429 or "ratelimited"
	failed      int // calls answered another error
}

// countSlack counts the Web API calls the fake received for channel, and
// the incident's top-level messages (marker in their text).
func countSlack(st fakeslack.State, channel, marker string) slackCounts {
	var c slackCounts
	for _, m := range st.TopLevel(channel) {
		if strings.Contains(m.Text, marker) {
			c.messages++
		}
	}
	for _, call := range st.Calls {
		if call.Params["channel"] != channel {
			continue
		}
		switch call.Method {
		case "chat.postMessage":
			switch {
			case call.Params["thread_ts"] != "":
				c.replies++
			case strings.Contains(call.Params["text"], marker):
				c.posts++
			default:
				c.otherPosts++
				c.otherText = cmp.Or(c.otherText, call.Params["text"])
			}
		case "chat.update":
			c.updates++
		}
		switch call.Error {
		case "":
		case "http 429", "ratelimited":
			c.rateLimited++
		default:
			c.failed++
		}
	}
	return c
}
