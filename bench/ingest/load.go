package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A target is an ingest endpoint under load: alert n goes to
// urls[n%len(urls)], one URL per integration. The probes, when set, say
// how much CPU its server process and its database use.
type target struct {
	name      string
	urls      []string
	serverCPU cpuProbe
	dbCPU     cpuProbe
}

func (t target) url(a alert) string { return t.urls[a.route%len(t.urls)] }

// loadSpec is one measurement: concurrency senders, each posting one alert
// after the other over its own keep-alive connection, for duration or until
// count requests were sent in all.
type loadSpec struct {
	phase       string // goes into every dedup key and title
	concurrency int
	duration    time.Duration
	count       int
	repeats     bool // one alert in ten repeats one of hotKeys keys
}

// hotKeys is how many dedup keys the repeating alerts of a phase share.
const hotKeys = 10

// loadResult is what the senders of one spec saw.
type loadResult struct {
	accepted  int // answered 202
	failed    int // any other answer or a transport error
	firstErr  string
	start     time.Time
	elapsed   time.Duration
	latencies []time.Duration // of the accepted requests, sorted
	// serverCPU and dbCPU are the CPU time the target's server process and
	// its database used during the load; -1 when unknown.
	serverCPU time.Duration
	dbCPU     time.Duration
	clientCPU time.Duration // this process: the load generator (and an in-process baseline)
	// distinct counts accepted alerts with a key of their own; hot[i] says
	// whether hot key i was accepted at least once.
	distinct int
	hot      [hotKeys]bool
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.accepted) / r.elapsed.Seconds()
}

// incidents is how many incidents oncall should open for the accepted
// alerts: one per distinct key.
func (r loadResult) incidents() int {
	n := r.distinct
	for _, h := range r.hot {
		if h {
			n++
		}
	}
	return n
}

// percentile returns the p-th percentile (0..1) of the sorted latencies,
// nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

func (r *loadResult) merge(o loadResult) {
	r.accepted += o.accepted
	r.failed += o.failed
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.latencies = append(r.latencies, o.latencies...)
	r.distinct += o.distinct
	for i, h := range o.hot {
		r.hot[i] = r.hot[i] || h
	}
}

// runLoad runs spec against t and returns the merged result. Failed
// requests are counted, not fatal; a cancelled ctx is.
func runLoad(ctx context.Context, t target, spec loadSpec) (loadResult, error) {
	client := newClient(spec.concurrency)
	defer client.CloseIdleConnections()
	var (
		seq   atomic.Int64
		mu    sync.Mutex
		total loadResult
		wg    sync.WaitGroup
	)
	self := processCPU(os.Getpid())
	cpuBefore, selfBefore := measureCPU(t), self()
	start := time.Now()
	deadline := start.Add(spec.duration)
	for range spec.concurrency {
		wg.Go(func() {
			var mine loadResult
			for ctx.Err() == nil {
				n := int(seq.Add(1) - 1)
				if spec.count > 0 && n >= spec.count || spec.count <= 0 && time.Now().After(deadline) {
					break
				}
				a := newAlert(spec.phase, n, spec.repeats)
				mine.record(a, sendAlert(ctx, client, t.url(a), a))
			}
			mu.Lock()
			total.merge(mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.start, total.elapsed = start, time.Since(start)
	total.serverCPU, total.dbCPU = cpuBefore.since(measureCPU(t))
	total.clientCPU = cpuUsed(selfBefore, self())
	if err := ctx.Err(); err != nil {
		return total, fmt.Errorf("load %s on %s: %w", spec.phase, t.name, err)
	}
	slices.Sort(total.latencies)
	return total, nil
}

// cpuPerAlert is the CPU time used per accepted alert, -1 when unknown.
func (r loadResult) cpuPerAlert(cpu time.Duration) time.Duration {
	if cpu < 0 || r.accepted == 0 {
		return -1
	}
	return cpu / time.Duration(r.accepted)
}

// cpuMark is a target's CPU use at one moment.
type cpuMark struct {
	server, db map[int]time.Duration // nil when unknown
}

func measureCPU(t target) cpuMark {
	var m cpuMark
	if t.serverCPU != nil {
		m.server = t.serverCPU()
	}
	if t.dbCPU != nil {
		m.db = t.dbCPU()
	}
	return m
}

// since returns the server's and the database's CPU use from m to now.
func (m cpuMark) since(now cpuMark) (server, db time.Duration) {
	server, db = -1, -1
	if m.server != nil && now.server != nil {
		server = cpuUsed(m.server, now.server)
	}
	if m.db != nil && now.db != nil {
		db = cpuUsed(m.db, now.db)
	}
	return server, db
}

func (r *loadResult) record(a alert, s sent) {
	if s.err != nil || s.status != http.StatusAccepted {
		r.failed++
		if r.firstErr == "" {
			r.firstErr = s.describe()
		}
		return
	}
	r.accepted++
	r.latencies = append(r.latencies, s.latency)
	if a.hot >= 0 {
		r.hot[a.hot] = true
	} else {
		r.distinct++
	}
}

func newClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// alert is one webhook request body and its dedup key.
type alert struct {
	key   string
	hot   int // index of the hot key, -1 for a key of its own
	route int // which integration it goes to; the same for every repeat of a key
	body  []byte
}

// newAlert returns the n-th alert of a phase. With repeats, one alert in
// ten repeats one of hotKeys keys (a flapping alert joining its open
// incident); the others each open an incident. The key is in the title
// between brackets, so the Slack message can be traced back to it.
func newAlert(phase string, n int, repeats bool) alert {
	a := alert{key: fmt.Sprintf("%s-%d", phase, n), hot: -1, route: n}
	if repeats && n%10 == 9 {
		a.hot = n / 10 % hotKeys
		a.key = fmt.Sprintf("%s-hot%d", phase, a.hot)
		a.route = a.hot
	}
	severities := []string{"critical", "error", "warning", "critical", "error"}
	body, _ := json.Marshal(webhookAlert{ // strings and a map of strings: cannot fail
		Title:    fmt.Sprintf("[%s] High 5xx rate on checkout-api (pod checkout-api-%d)", a.key, n%7),
		Message:  "5xx responses above 5% for 5 minutes: 7.3% of 12,408 requests failed. Runbook: restart the pod if the error budget burns faster than 2x.",
		Status:   "firing",
		DedupKey: a.key,
		Severity: severities[n%len(severities)],
		Link:     "https://grafana.example.com/d/checkout/checkout-api?orgId=1&var-pod=checkout-api-" + fmt.Sprint(n%7),
		Labels: map[string]string{
			"service": "checkout-api", "env": "production", "region": "eu-west-1",
			"team": "payments", "alertname": "HighErrorRate", "pod": fmt.Sprintf("checkout-api-%d", n%7),
		},
	})
	a.body = body
	return a
}

// webhookAlert is oncall's documented webhook body (docs/webhook.md).
type webhookAlert struct {
	Title    string            `json:"title"`
	Message  string            `json:"message"`
	Status   string            `json:"status"`
	DedupKey string            `json:"dedup_key"`
	Severity string            `json:"severity"`
	Link     string            `json:"link"`
	Labels   map[string]string `json:"labels"`
}

// sent is the outcome of one request.
type sent struct {
	status  int
	err     error
	latency time.Duration // from sending to the end of the answer
	at      time.Time     // when the answer was read
	// retryAfter is the answer's Retry-After header, "" when none.
	retryAfter string
}

func (s sent) describe() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("HTTP %d", s.status)
}

func sendAlert(ctx context.Context, client *http.Client, url string, a alert) sent {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(a.body))
	if err != nil {
		return sent{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return sent{err: err, latency: time.Since(start)}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	now := time.Now()
	return sent{status: resp.StatusCode, err: err, latency: now.Sub(start), at: now, retryAfter: resp.Header.Get("Retry-After")}
}
