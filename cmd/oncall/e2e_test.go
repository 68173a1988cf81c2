package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/storage"
)

// The buttons of an incident message in each status.
var (
	triggeredButtons = []string{
		"Acknowledge=" + bot.ActionIDAcknowledge, "Resolve=" + bot.ActionIDResolve, "Escalate=" + bot.ActionIDEscalate,
	}
	acknowledgedButtons = []string{
		"Unacknowledge=" + bot.ActionIDUnacknowledge, "Resolve=" + bot.ActionIDResolve, "Escalate=" + bot.ActionIDEscalate,
	}
	resolvedButtons = []string{"Reopen=" + bot.ActionIDReopen}
)

// slackServe runs serve with Slack (a fake) and a fresh database.
func slackServe(t *testing.T) (*running, *fakeslack.Server, string) {
	t.Helper()
	fake := newFakeSlack(t)
	dbURL := pgtest.NewDatabase(t)
	r := startServe(t, serveOptions{
		ConfigPath:  writeConfig(t),
		DataDir:     t.TempDir(),
		DatabaseURL: dbURL,
		Slack:       bot.Config{BotToken: fake.BotToken(), AppToken: fake.AppToken(), APIURL: fake.APIURL()},
	})
	return r, fake, dbURL
}

// TestEndToEnd follows alerts from the HTTP endpoints to Slack messages
// and back: clicks on the message's buttons change the incident and the
// message, and the source resolves it.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	srv, fake, dbURL := slackServe(t)

	t.Run("webhook", func(t *testing.T) {
		const title, key = "Disk full on db-1", "disk-db-1"
		post(t, webhookURL(srv.URL), webhookAlert(t, title, key, "firing")).accepted(t, 1)

		st := waitSlack(t, fake, "the incident message", func(st fakeslack.State) bool {
			return len(st.TopLevel(webhookChannel)) > 0
		})
		first := st.TopLevel(webhookChannel)[0]
		ts := first.TS
		if got := buttonTexts(first); !slices.Equal(got, triggeredButtons) {
			t.Errorf("buttons = %q, want %q", got, triggeredButtons)
		}
		text := messageText(first)
		for _, want := range []string{title, "Triggered", "Severity: *critical*", "1 alert received", "Free space on /var", "`host=db-1`", "via deploys (Webhook)"} {
			if !strings.Contains(text, want) {
				t.Errorf("incident message does not say %q:\n%s", want, text)
			}
		}
		incidentID := incidentOf(t, first)

		// A repeat joins the incident: the message counts it, nothing is posted.
		post(t, webhookURL(srv.URL), webhookAlert(t, title, key, "firing")).accepted(t, 1)
		st = waitMessage(t, fake, webhookChannel, ts, "the message to count 2 alerts", func(m fakeslack.Message) bool {
			return strings.Contains(messageText(m), "2 alerts received")
		})
		wantOneMessage(t, st, webhookChannel)

		waitSlack(t, fake, "a Socket Mode connection", func(st fakeslack.State) bool { return st.Connections > 0 })
		steps := []struct {
			action      string
			buttons     []string
			status      string // in the message's status line
			threadReply string
		}{
			{bot.ActionIDAcknowledge, acknowledgedButtons, "*Acknowledged* by <@U0ALICE>", "Acknowledged by <@U0ALICE>"},
			{bot.ActionIDEscalate, acknowledgedButtons, "*Acknowledged* by <@U0ALICE>",
				"<!here> Escalated by <@U0ALICE>: no escalation chain for this incident"},
			{bot.ActionIDResolve, resolvedButtons, "*Resolved* by <@U0ALICE>", "Resolved by <@U0ALICE>"},
			{bot.ActionIDReopen, triggeredButtons, "*Triggered*", "Reopened by <@U0ALICE>"},
		}
		for i, step := range steps {
			click(t, fake, fakeslack.Click{Channel: webhookChannel, TS: ts, UserID: "U0ALICE", ActionID: step.action})
			waitIncident(t, fake, ts, step.buttons, step.status, i+1, step.threadReply)
		}

		// The source resolves it.
		post(t, webhookURL(srv.URL), webhookAlert(t, title, key, "resolved")).accepted(t, 1)
		st = waitIncident(t, fake, ts, resolvedButtons, "*Resolved* by the source (Webhook)", 5, "Resolved by the source (Webhook)")
		wantOneMessage(t, st, webhookChannel)
		var replies []string
		for _, r := range st.Replies(webhookChannel, ts) {
			replies = append(replies, r.Text)
		}
		wantReplies := []string{"Acknowledged by <@U0ALICE>", "<!here> Escalated by <@U0ALICE>: no escalation chain for this incident", "Resolved by <@U0ALICE>", "Reopened by <@U0ALICE>", "Resolved by the source (Webhook)"}
		if !slices.Equal(replies, wantReplies) {
			t.Errorf("thread replies = %q, want %q", replies, wantReplies)
		}

		inc, events := loadIncident(t, dbURL, incidentID)
		if inc.Status != oncall.StatusResolved || inc.ResolvedBy != oncall.ActorSource || inc.AlertCount != 3 || inc.Title != title {
			t.Errorf("incident = %s %q resolved by %q, %d alerts; want resolved %q by source, 3 alerts",
				inc.Status, inc.Title, inc.ResolvedBy, inc.AlertCount, title)
		}
		var timeline []string
		for _, e := range events {
			if e.Kind != oncall.EventAlert {
				timeline = append(timeline, fmt.Sprintf("%s by %s", e.Kind, e.Actor))
			}
		}
		wantTimeline := []string{"created by source", "acknowledged by slack:U0ALICE", "escalated by slack:U0ALICE", "resolved by slack:U0ALICE",
			"reopened by slack:U0ALICE", "resolved by source"}
		if !slices.Equal(timeline, wantTimeline) {
			t.Errorf("timeline = %q, want %q", timeline, wantTimeline)
		}

		// The same alert firing again opens a new incident with its own
		// message; the old one cannot be reopened while the new one is open.
		post(t, webhookURL(srv.URL), webhookAlert(t, title, key, "firing")).accepted(t, 1)
		st = waitSlack(t, fake, "a second incident message", func(st fakeslack.State) bool {
			return len(st.TopLevel(webhookChannel)) > 1
		})
		second := st.TopLevel(webhookChannel)[1]
		if id := incidentOf(t, second); id == incidentID || !strings.Contains(messageText(second), "1 alert received") {
			t.Errorf("second message is of incident %d (the first is %d):\n%s", id, incidentID, messageText(second))
		}
		click(t, fake, fakeslack.Click{Channel: webhookChannel, TS: ts, UserID: "U0ALICE", ActionID: bot.ActionIDReopen})
		st = waitSlack(t, fake, "the user to be told why the incident cannot be reopened", func(st fakeslack.State) bool {
			return len(st.Ephemerals) > 0
		})
		if e := st.Ephemerals[0]; e.User != "U0ALICE" || e.Channel != webhookChannel || !strings.Contains(e.Text, "cannot be reopened") {
			t.Errorf("ephemeral message = %+v, want one to U0ALICE saying the incident cannot be reopened", e)
		}
		if inc, _ := loadIncident(t, dbURL, incidentID); inc.Status != oncall.StatusResolved {
			t.Errorf("the first incident is %s after a refused reopen, want resolved", inc.Status)
		}
	})

	t.Run("alertmanager", func(t *testing.T) {
		post(t, alertmanagerURL(srv.URL), alertmanagerGroup(t, "firing", "firing", "firing")).accepted(t, 2)
		st := waitSlack(t, fake, "the Alertmanager incident message", func(st fakeslack.State) bool {
			return len(st.TopLevel(alertsChannel)) > 0
		})
		msg := st.TopLevel(alertsChannel)[0]
		text := messageText(msg)
		for _, want := range []string{"API latency is high", "2 firing, 0 resolved", "2 alerts received", "via prometheus (Alertmanager)"} {
			if !strings.Contains(text, want) {
				t.Errorf("incident message does not say %q:\n%s", want, text)
			}
		}
		if got := buttonTexts(msg); !slices.Equal(got, triggeredButtons) {
			t.Errorf("buttons = %q, want %q", got, triggeredButtons)
		}

		// One alert of the group resolves, the other still fires.
		post(t, alertmanagerURL(srv.URL), alertmanagerGroup(t, "firing", "resolved", "firing")).accepted(t, 2)
		waitMessage(t, fake, alertsChannel, msg.TS, "the message to count 1 firing, 1 resolved", func(m fakeslack.Message) bool {
			text := messageText(m)
			return strings.Contains(text, "1 firing, 1 resolved") && strings.Contains(text, "4 alerts received") &&
				strings.Contains(text, "*Triggered*")
		})

		post(t, alertmanagerURL(srv.URL), alertmanagerGroup(t, "resolved", "resolved", "resolved")).accepted(t, 2)
		st = waitMessage(t, fake, alertsChannel, msg.TS, "the group to resolve the incident", func(m fakeslack.Message) bool {
			return strings.Contains(messageText(m), "*Resolved* by the source (Alertmanager)")
		})
		m, _ := st.Message(alertsChannel, msg.TS)
		if text := messageText(m); !strings.Contains(text, "0 firing, 2 resolved") {
			t.Errorf("resolved message does not count 2 resolved alerts:\n%s", text)
		}
		if got := buttonTexts(m); !slices.Equal(got, resolvedButtons) {
			t.Errorf("buttons = %q, want %q", got, resolvedButtons)
		}
		wantOneMessage(t, st, alertsChannel)
	})

	t.Run("concurrent repeats", func(t *testing.T) {
		// Repeats processed at the same time still make one incident and
		// one message.
		const n = 10
		body := webhookAlert(t, "Flapping check", "flapping", "firing")
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				resp, err := httpClient.Post(webhookURL(srv.URL), "application/json", strings.NewReader(string(body)))
				if err == nil {
					resp.Body.Close()
					codes[i] = resp.StatusCode
				}
			})
		}
		wg.Wait()
		for i, code := range codes {
			if code != http.StatusAccepted {
				t.Fatalf("repeat %d answered %d, want 202", i, code)
			}
		}
		var ts string
		st := waitSlack(t, fake, fmt.Sprintf("a message counting %d alerts", n), func(st fakeslack.State) bool {
			for _, m := range st.TopLevel(webhookChannel) {
				if text := messageText(m); strings.Contains(text, "Flapping check") && strings.Contains(text, fmt.Sprintf("%d alerts received", n)) {
					ts = m.TS
					return true
				}
			}
			return false
		})
		for _, m := range st.TopLevel(webhookChannel) {
			if m.TS != ts && strings.Contains(messageText(m), "Flapping check") {
				t.Errorf("a second message for the repeats:\n%s", dumpMessages(st))
			}
		}
		if got := queryInt(t, dbURL, "SELECT count(*) FROM incidents WHERE group_key = 'dedup:flapping'"); got != 1 {
			t.Errorf("%d incidents for %d concurrent repeats, want 1", got, n)
		}
	})

	t.Run("slash command help", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		ack, err := fake.SendSlashCommand(ctx, map[string]string{"text": "help"})
		if err != nil {
			t.Fatalf("/oncall help: %v", err)
		}
		var reply struct {
			ResponseType string `json:"response_type"`
			Text         string `json:"text"`
		}
		if err := json.Unmarshal(ack.Payload, &reply); err != nil {
			t.Fatalf("ack payload %s: %v", ack.Payload, err)
		}
		if reply.ResponseType != "ephemeral" || !strings.Contains(reply.Text, "`/oncall help`") || !strings.Contains(reply.Text, "*Acknowledge*") {
			t.Errorf("/oncall help answered %s", ack.Payload)
		}
	})
}

// TestIngestRejectsBadInput sends bad requests to the running server: each
// gets a clear JSON error and leaves nothing behind, in the database or in
// Slack.
func TestIngestRejectsBadInput(t *testing.T) {
	t.Parallel()
	srv, fake, dbURL := slackServe(t)
	waitReady(t, srv.URL)

	oversized := append([]byte(`{"title":"big","message":"`), strings.Repeat("x", 1<<20)...)
	oversized = append(oversized, `"}`...)
	oversized = oversized[:1<<20+1]
	broken := mustJSON(t, map[string]any{
		"version": "4", "groupKey": "{}:{alertname=\"Broken\"}", "status": "firing",
		"alerts": []map[string]any{
			{"status": "firing", "labels": map[string]string{"alertname": "Broken", "instance": "a"}},
			{"status": "exploded", "labels": map[string]string{"alertname": "Broken", "instance": "b"}},
		},
	})
	tests := []struct {
		name     string
		url      string
		body     []byte
		code     int
		errorHas string
	}{
		{"malformed JSON", webhookURL(srv.URL), []byte(`{"title": "Disk full"`), http.StatusBadRequest, ""},
		{"no title", webhookURL(srv.URL), []byte(`{"title": 42}`), http.StatusBadRequest, "title"},
		{"wrong token", srv.URL + "/integrations/webhook/not-a-token-of-ours-000", webhookAlert(t, "x", "k", "firing"), http.StatusUnauthorized, "unknown or disabled integration token"},
		{"token of another kind", srv.URL + "/integrations/webhook/" + alertmanagerToken, webhookAlert(t, "x", "k", "firing"), http.StatusUnauthorized, "unknown or disabled integration token"},
		{"unknown kind", srv.URL + "/integrations/nagios/" + webhookToken, webhookAlert(t, "x", "k", "firing"), http.StatusNotFound, "nagios"},
		{"1 MiB + 1 body", webhookURL(srv.URL), oversized, http.StatusRequestEntityTooLarge, "larger than"},
		{"Alertmanager batch with one broken alert", alertmanagerURL(srv.URL), broken, http.StatusBadRequest, "alerts[1].status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := post(t, tt.url, tt.body)
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(got.Body, &body); err != nil || got.ContentType != "application/json" {
				t.Fatalf("answer %d %s %s is not a JSON error (%v)", got.Code, got.ContentType, got.Body, err)
			}
			if got.Code != tt.code || body.Error == "" || !strings.Contains(body.Error, tt.errorHas) {
				t.Errorf("answer = %d %q, want %d with an error naming %q", got.Code, body.Error, tt.code, tt.errorHas)
			}
		})
	}

	// A good alert after the bad ones is the only thing that arrives.
	post(t, webhookURL(srv.URL), webhookAlert(t, "Sentinel", "sentinel", "firing")).accepted(t, 1)
	st := waitSlack(t, fake, "the sentinel's message", func(st fakeslack.State) bool {
		return len(st.TopLevel(webhookChannel)) > 0
	})
	if n := len(st.Messages); n != 1 || !strings.Contains(messageText(st.Messages[0]), "Sentinel") {
		t.Errorf("Slack got %d messages, want only the sentinel's:\n%s", n, dumpMessages(st))
	}
	for _, q := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM incidents", 1},
		{"SELECT count(*) FROM incidents WHERE title = 'Sentinel'", 1},
		{"SELECT count(*) FROM alert_batches", 1},
		{"SELECT count(*) FROM alerts", 1},
		{"SELECT count(*) FROM incident_alerts", 1},
	} {
		if got := queryInt(t, dbURL, q.sql); got != q.want {
			t.Errorf("%s = %d, want %d", q.sql, got, q.want)
		}
	}
	// Only the sentinel was queued.
	_, metrics, err := get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if want := `oncall_ingest_alerts_total{integration="deploys"} 1`; !strings.Contains(string(metrics), want) ||
		strings.Contains(string(metrics), `oncall_ingest_alerts_total{integration="prometheus"}`) {
		t.Errorf("metrics do not say that exactly one alert was queued (%s):\n%s", want, grepLines(string(metrics), "oncall_ingest_alerts_total"))
	}
}

// TestHealthEndpoints checks /healthz, /readyz and /metrics.
func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	srv := startServe(t, serveOptions{ConfigPath: writeConfig(t), DataDir: t.TempDir(), DatabaseURL: pgtest.NewDatabase(t)})
	waitReady(t, srv.URL)
	post(t, webhookURL(srv.URL), webhookAlert(t, "Disk full", "disk", "firing")).accepted(t, 1)

	tests := []struct {
		path string
		want []string
	}{
		{"/healthz", []string{`"status":"ok"`}},
		{"/readyz", []string{`"database":"ok"`, `"queue":"ok"`}},
		{"/readyz/ingest", []string{`"queue":"ok"`}},
		{"/metrics", []string{`oncall_ingest_requests_total{code="202",kind="webhook"} 1`, "go_goroutines"}},
	}
	for _, tt := range tests {
		code, body, err := get(srv.URL + tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		if code != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", tt.path, code, body)
		}
		for _, want := range tt.want {
			if !strings.Contains(string(body), want) {
				t.Errorf("GET %s does not say %s:\n%s", tt.path, want, body)
			}
		}
	}
}

// TestGracefulShutdownKeepsAcceptedAlerts stops serve while alerts are
// being posted: every alert answered 202 becomes an incident once serve
// runs again on the same data directory.
func TestGracefulShutdownKeepsAcceptedAlerts(t *testing.T) {
	t.Parallel()
	o := serveOptions{ConfigPath: writeConfig(t), DataDir: t.TempDir(), DatabaseURL: pgtest.NewDatabase(t)}
	first := startServe(t, o)
	waitReady(t, first.URL)

	// Post alerts from several senders and cancel serve at the first 202,
	// while the others are in flight.
	const senders = 8
	bodies := make([]string, senders)
	for i := range bodies {
		bodies[i] = string(webhookAlert(t, "Shutdown "+strconv.Itoa(i), "shutdown-"+strconv.Itoa(i), "firing"))
	}
	codes := make([]int, senders)
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopped := make(chan error, 1)
	for i := range senders {
		wg.Go(func() {
			resp, err := httpClient.Post(webhookURL(first.URL), "application/json", strings.NewReader(bodies[i]))
			if err != nil {
				return // refused: the server stopped listening first
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
			if resp.StatusCode == http.StatusAccepted {
				stopOnce.Do(func() { go func() { stopped <- first.stop() }() })
			}
		})
	}
	wg.Wait()
	stopOnce.Do(func() { go func() { stopped <- first.stop() }() })
	if err := <-stopped; err != nil {
		t.Fatalf("serve returned %v after its context was cancelled, want nil", err)
	}
	var accepted []string
	for i, code := range codes {
		if code == http.StatusAccepted {
			accepted = append(accepted, "dedup:shutdown-"+strconv.Itoa(i))
		} else if code != 0 && code != http.StatusServiceUnavailable {
			t.Errorf("sender %d got %d while serve stopped, want 202, 503 or a refused connection", i, code)
		}
	}
	if len(accepted) == 0 {
		t.Fatal("no alert was accepted before the shutdown")
	}

	// processTimeout: a batch the stopping processor had pulled and gave
	// back comes again only after the ack wait.
	startServe(t, o)
	pollFor(t, processTimeout, fmt.Sprintf("the %d accepted alerts to become incidents", len(accepted)), func() (bool, error) {
		n, err := tryQueryInt(t.Context(), o.DatabaseURL, "SELECT count(*) FROM incidents WHERE group_key = ANY($1)", accepted)
		return n == len(accepted), fmt.Errorf("%d of %d incidents (err %v)", n, len(accepted), err)
	})
	if n := queryInt(t, o.DatabaseURL, "SELECT count(*) FROM alerts WHERE incident_id IN (SELECT id FROM incidents WHERE group_key = ANY($1))", accepted); n != len(accepted) {
		t.Errorf("%d alerts stored for %d accepted requests", n, len(accepted))
	}
}

// waitSlack waits until cond holds for the fake Slack's state.
func waitSlack(t *testing.T, fake *fakeslack.Server, what string, cond func(fakeslack.State) bool) fakeslack.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	st, err := fake.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v\nSlack has:\n%s", what, err, dumpMessages(st))
	}
	return st
}

// waitMessage waits until cond holds for the message ts in channel.
func waitMessage(t *testing.T, fake *fakeslack.Server, channel, ts, what string, cond func(fakeslack.Message) bool) fakeslack.State {
	t.Helper()
	return waitSlack(t, fake, what, func(st fakeslack.State) bool {
		m, ok := st.Message(channel, ts)
		return ok && cond(m)
	})
}

// waitIncident waits until the webhook incident's message has the buttons
// and the status line, and its thread the nth reply, and returns the state.
func waitIncident(t *testing.T, fake *fakeslack.Server, ts string, buttons []string, status string, n int, reply string) fakeslack.State {
	t.Helper()
	what := fmt.Sprintf("the message to show %q with buttons %q and reply %d %q", status, buttons, n, reply)
	return waitSlack(t, fake, what, func(st fakeslack.State) bool {
		m, ok := st.Message(webhookChannel, ts)
		replies := st.Replies(webhookChannel, ts)
		return ok && slices.Equal(buttonTexts(m), buttons) && strings.Contains(messageText(m), status) &&
			len(replies) >= n && replies[n-1].Text == reply
	})
}

// wantOneMessage checks that the channel has exactly one message that is
// not a thread reply, posted by exactly one chat.postMessage.
func wantOneMessage(t *testing.T, st fakeslack.State, channel string) {
	t.Helper()
	posts := 0
	for _, c := range st.Calls {
		if c.Method == "chat.postMessage" && c.Params["channel"] == channel && c.Params["thread_ts"] == "" {
			posts++
		}
	}
	if n := len(st.TopLevel(channel)); n != 1 || posts != 1 {
		t.Errorf("channel %s has %d messages from %d top-level chat.postMessage calls, want 1 and 1:\n%s", channel, n, posts, dumpMessages(st))
	}
}

func click(t *testing.T, fake *fakeslack.Server, c fakeslack.Click) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := fake.ClickButton(ctx, c); err != nil {
		t.Fatalf("click %s: %v", c.ActionID, err)
	}
}

// incidentOf returns the incident id the message's buttons carry.
func incidentOf(t *testing.T, m fakeslack.Message) int64 {
	t.Helper()
	b, ok := m.Button(bot.ActionIDResolve)
	if !ok {
		t.Fatalf("message %s has no Resolve button", m.TS)
	}
	id, err := strconv.ParseInt(b.Value, 10, 64)
	if err != nil {
		t.Fatalf("Resolve button value %q is not an incident id", b.Value)
	}
	return id
}

func loadIncident(t *testing.T, dbURL string, id int64) (oncall.Incident, []oncall.Event) {
	t.Helper()
	db, err := storage.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inc, err := db.Incident(t.Context(), id)
	if err != nil {
		t.Fatalf("load incident %d: %v", id, err)
	}
	events, err := db.Events(t.Context(), id)
	if err != nil {
		t.Fatalf("load events of incident %d: %v", id, err)
	}
	return inc, events
}

// dumpMessages shows what the fake Slack has, for failure messages.
func dumpMessages(st fakeslack.State) string {
	var b strings.Builder
	for _, m := range st.Messages {
		fmt.Fprintf(&b, "- %s %s thread=%q text=%q buttons=%q\n  %s\n", m.Channel, m.TS, m.ThreadTS, m.Text,
			buttonTexts(m), strings.ReplaceAll(messageText(m), "\n", "\n  "))
	}
	fmt.Fprintf(&b, "(%d Web API calls, %d Socket Mode connections)", len(st.Calls), st.Connections)
	return b.String()
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
