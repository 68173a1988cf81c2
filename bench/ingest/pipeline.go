package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall/internal/fakeslack"
)

const (
	pollInterval   = 250 * time.Millisecond
	latencyTimeout = 2 * time.Minute
)

// latencyResult is the alert-to-Slack phase: from the 202 to the fake Slack
// recording the chat.postMessage of the incident.
type latencyResult struct {
	rate      int
	channels  int
	sent      int
	accepted  int
	posted    int
	latencies []time.Duration // sorted
}

// measureSlackLatency posts rate alerts a second for d, each with a key of
// its own (so each opens an incident), round robin over the integrations
// and so over their channels; open loop: a slow answer does not delay the
// next alert. The post time is the message's ts, which the fake Slack takes
// from the clock when it records the message.
func measureSlackLatency(ctx context.Context, in *instance, rate int, d time.Duration) (latencyResult, error) {
	const phase = "lat"
	res := latencyResult{rate: rate, channels: len(in.routes), sent: int(float64(rate) * d.Seconds())}
	client := newClient(64)
	defer client.CloseIdleConnections()
	t := in.target()

	var (
		mu       sync.Mutex
		accepted = map[string]time.Time{}
		wg       sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range res.sent {
		select {
		case <-ctx.Done():
			wg.Wait()
			return res, fmt.Errorf("alert-to-Slack phase: %w", ctx.Err())
		case <-tick.C:
		}
		wg.Go(func() {
			a := newAlert(phase, i, false)
			if s := sendAlert(ctx, client, t.url(a), a); s.err == nil && s.status == 202 {
				mu.Lock()
				accepted[a.key] = s.at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.accepted = len(accepted)

	posted, err := waitPosted(ctx, in.slack, phase, len(accepted), latencyTimeout)
	if err != nil {
		return res, err
	}
	for key, at := range accepted {
		if p, ok := posted[key]; ok {
			res.latencies = append(res.latencies, p.Sub(at))
		}
	}
	res.posted = len(res.latencies)
	slices.Sort(res.latencies)
	return res, nil
}

// processingResult is the processing phase: a burst of alerts, each its
// own incident, and when the last of their incidents was stored in
// PostgreSQL and posted to Slack.
type processingResult struct {
	load       loadResult
	channels   int
	incidents  int // expected: one per alert accepted
	stored     int
	lastStored time.Time
	posted     int
	lastPosted time.Time
}

// perSecond is n over the time from the start of the burst to last.
func (p processingResult) perSecond(n int, last time.Time) float64 {
	if !last.After(p.load.start) {
		return 0
	}
	return float64(n) / last.Sub(p.load.start).Seconds()
}

// measureProcessing sends count alerts, each its own incident, with the
// given concurrency, and waits until oncall has stored and posted them all.
func measureProcessing(ctx context.Context, in *instance, count, concurrency int, timeout time.Duration) (processingResult, error) {
	before, _, err := in.storedIncidents(ctx)
	if err != nil {
		return processingResult{}, err
	}
	spec := loadSpec{phase: "proc", concurrency: concurrency, count: count}
	res, err := runLoad(ctx, in.target(), spec)
	if err != nil {
		return processingResult{}, err
	}
	p := processingResult{load: res, channels: len(in.routes), incidents: res.incidents()}
	if p.stored, p.lastStored, err = in.waitStored(ctx, before, p.incidents, timeout); err != nil {
		return p, err
	}
	d, err := in.waitDrained(ctx, spec.phase, res, timeout)
	p.posted, p.lastPosted = d.posted, d.last
	return p, err
}

// storedIncidents counts the incidents in the instance's database and
// returns when the newest was created.
func (in *instance) storedIncidents(ctx context.Context) (int, time.Time, error) {
	conn, err := pgx.Connect(ctx, in.dbURL)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count incidents of %s: %w", in.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var (
		n    int
		last *time.Time
	)
	if err := conn.QueryRow(ctx, "SELECT count(*), max(created_at) FROM incidents").Scan(&n, &last); err != nil {
		return 0, time.Time{}, fmt.Errorf("count incidents of %s: %w", in.name, err)
	}
	if last == nil {
		return n, time.Time{}, nil
	}
	return n, *last, nil
}

// waitStored polls the database until it holds want incidents more than
// before, or timeout passes.
func (in *instance) waitStored(ctx context.Context, before, want int, timeout time.Duration) (int, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, last, err := in.storedIncidents(ctx)
		if err != nil {
			return 0, time.Time{}, err
		}
		if n-before >= want || time.Now().After(deadline) {
			if n-before < want {
				in.log.Warn("not every incident stored in time", "stored", n-before, "want", want, "timeout", timeout)
			}
			return n - before, last, in.alive()
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, fmt.Errorf("wait for incidents of %s: %w", in.name, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// drained says how many incidents of a phase reached Slack, and when the
// last did.
type drained struct {
	posted int
	last   time.Time
}

// waitDrained waits until every incident of a load phase is in Slack. A
// timeout is not an error: the result says how far it got.
func (in *instance) waitDrained(ctx context.Context, phase string, res loadResult, timeout time.Duration) (drained, error) {
	want := res.incidents()
	posted, err := waitPosted(ctx, in.slack, phase, want, timeout)
	if err != nil {
		return drained{}, err
	}
	d := drained{posted: len(posted)}
	for _, at := range posted {
		if at.After(d.last) {
			d.last = at
		}
	}
	if d.posted < want {
		in.log.Warn("not every incident reached Slack in time", "phase", phase, "posted", d.posted, "want", want, "timeout", timeout)
	}
	return d, in.alive()
}

// waitPosted polls the fake Slack until it holds want incident messages of
// the phase or timeout passes, and returns their post times by key. Only
// the cancellation of ctx is an error.
func waitPosted(ctx context.Context, slack *fakeslack.Server, phase string, want int, timeout time.Duration) (map[string]time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		posted := phaseMessages(slack.State(), phase)
		if len(posted) >= want || time.Now().After(deadline) {
			return posted, nil
		}
		select {
		case <-ctx.Done():
			return posted, fmt.Errorf("wait for Slack posts of %s: %w", phase, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// phaseMessages returns the post time of each incident message of the
// phase, by the dedup key its title carries between brackets.
func phaseMessages(st fakeslack.State, phase string) map[string]time.Time {
	out := map[string]time.Time{}
	marker := "[" + phase + "-"
	for _, m := range st.Messages {
		i := strings.Index(m.Text, marker)
		if m.ThreadTS != "" || i < 0 {
			continue
		}
		key, _, ok := strings.Cut(m.Text[i+1:], "]")
		if !ok {
			continue
		}
		if at, ok := parseTS(m.TS); ok {
			out[key] = at
		}
	}
	return out
}

// parseTS reads a Slack message ts ("seconds.micros").
func parseTS(ts string) (time.Time, bool) {
	sec, frac, ok := strings.Cut(ts, ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(frac) != 6 {
		return time.Time{}, false
	}
	return time.Unix(s, us*1000), true
}
