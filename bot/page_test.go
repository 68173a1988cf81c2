package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
)

// recordedAlerts stands in for the queue: it keeps the batches published.
type recordedAlerts struct {
	mu      sync.Mutex
	batches []oncall.AlertBatch
	err     error // when set, PublishAlert fails with it
}

func (r *recordedAlerts) PublishAlert(_ context.Context, b oncall.AlertBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.batches = append(r.batches, b)
	return nil
}

func (r *recordedAlerts) published() []oncall.AlertBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]oncall.AlertBatch(nil), r.batches...)
}

func (r *recordedAlerts) failWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// newPageHarness is newHarness with people: alice known to the config by
// email only, bob by Slack id and email, both in the fake workspace; two
// schedules, one with a space in its name; and a queue for /oncall page.
func newPageHarness(t *testing.T) (*harness, *recordedAlerts) {
	t.Helper()
	alerts := &recordedAlerts{}
	h := newHarnessWith(t, fakeslack.Config{Users: []fakeslack.User{
		{ID: alice, Email: "alice@example.com", Name: "alice"},
		{ID: bob, Email: "bob@example.com", Name: "bob"},
		{ID: carol, Email: "carol@example.com", Name: "carol"},
	}}, bot.Config{
		Users: []bot.UserRef{
			{Email: "alice@example.com"},
			{Slack: bob, Email: "bob@example.com", Name: "Bob Builder"},
		},
		ScheduleChannels: map[string]string{"primary": "C0PRIMARY", "db team": "C0DB"},
		Alerts:           alerts,
	})
	return h, alerts
}

// pageOf is the page of a person (or mention target) by Slack for the
// incident as it is now.
func (h *harness) pageOf(id int64, person string) oncall.Page {
	h.t.Helper()
	key := fmt.Sprintf("%d:0:0:%s:slack", id, person)
	return oncall.Page{
		Delivery: oncall.Delivery{Key: key, IncidentID: id, Person: person, Channel: oncall.NotifySlack},
		Incident: h.incident(id),
	}
}

// posted returns the message a provider id ("CHANNEL:TS") names.
func (h *harness) posted(providerID string) fakeslack.Message {
	h.t.Helper()
	ch, ts, ok := strings.Cut(providerID, ":")
	if !ok {
		h.t.Fatalf("provider id %q is not CHANNEL:TS", providerID)
	}
	m, found := h.fake.State().Message(ch, ts)
	if !found {
		h.t.Fatalf("no message %s in %s", ts, ch)
	}
	return m
}

func pageMetadata(key string, id int64) string {
	return fmt.Sprintf(`{"event_type":"oncall_page","event_payload":{"delivery_key":%q,"incident_id":%d}}`, key, id)
}

func TestPageByDirectMessage(t *testing.T) {
	h, _ := newPageHarness(t)
	ctx := t.Context()
	id := h.record("checkout", oncall.AlertFiring)
	h.sync(id)
	incMsg := h.message(id)
	pager := h.bot.Pager()

	since := time.Now()
	p := h.pageOf(id, "alice@example.com")
	pid, err := pager.Send(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pid, fakeslack.DMChannel(alice)+":") {
		t.Fatalf("provider id %q, want the DM with alice", pid)
	}
	m := h.posted(pid)
	if want := fmt.Sprintf("You are paged: #%d [critical] HighErrorRate", id); m.Text != want {
		t.Errorf("text = %q, want %q", m.Text, want)
	}
	if want := pageMetadata(p.Delivery.Key, id); string(m.Metadata) != want {
		t.Errorf("metadata = %s, want %s", m.Metadata, want)
	}
	if got := actionIDs(m); got != "incident_acknowledge,incident_resolve" {
		t.Errorf("buttons = %s", got)
	}
	for _, b := range m.Buttons() {
		if b.Value != fmt.Sprint(id) || b.BlockID != "actions" {
			t.Errorf("button %s: block %q, value %q; want the incident message's (actions, %d)", b.ActionID, b.BlockID, b.Value, id)
		}
	}
	if link := fakeslack.PermalinkURL(incMsg.Channel, incMsg.TS); !strings.Contains(blockText(t, m, "page"), "<"+link+"|") {
		t.Errorf("the page does not link to the incident message %s: %s", link, blockText(t, m, "page"))
	}

	// After the fact, Find tells this delivery's page from any other.
	got, found, err := pager.Find(ctx, p, since)
	if err != nil || !found || got != pid {
		t.Errorf("Find = %q, %v, %v; want %q", got, found, err, pid)
	}
	other := p
	other.Delivery.Key += ":2"
	if got, found, err := pager.Find(ctx, other, since); err != nil || found {
		t.Errorf("Find of another delivery = %q, %v, %v; want none", got, found, err)
	}
	if got, found, err := pager.Find(ctx, p, time.Now().Add(time.Hour)); err != nil || found {
		t.Errorf("Find of pages made after it = %q, %v, %v; want none", got, found, err)
	}

	// Acknowledge from the DM acts on the incident, and says so in the DM.
	if _, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: m.Channel, TS: m.TS, UserID: alice,
		ActionID: bot.ActionIDAcknowledge}); err != nil {
		t.Fatal(err)
	}
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); inc.Status != oncall.StatusAcknowledged || inc.AckedBy != oncall.SlackActor(alice) {
		t.Errorf("after Acknowledge in the DM: status %s by %q", inc.Status, inc.AckedBy)
	}
	st, err := h.fake.WaitFor(ctx, func(st fakeslack.State) bool { return len(st.Ephemerals) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Incident #%d: *Acknowledged* by <@%s> at <!date^", id, alice)
	if e := st.Ephemerals[0]; e.Channel != m.Channel || e.User != alice || !strings.HasPrefix(e.Text, want) {
		t.Errorf("ephemeral = %+v, want one in the DM starting %q", e, want)
	}
	if r := h.replies(h.message(id)); len(r) != 1 || r[0] != "Acknowledged by <@U0ALICE>" {
		t.Errorf("thread = %q", r)
	}
}

func TestPageMentionsInTheChannel(t *testing.T) {
	h, _ := newPageHarness(t)
	ctx := t.Context()
	pager := h.bot.Pager()
	id := h.record("api", oncall.AlertFiring)

	// Before the incident message is posted: no link to it.
	since := time.Now()
	here := h.pageOf(id, oncall.MentionHere)
	hereID, err := pager.Send(ctx, here)
	if err != nil {
		t.Fatal(err)
	}
	m := h.posted(hereID)
	if want := fmt.Sprintf("<!here> Incident #%d needs someone: HighErrorRate", id); m.Channel != channel || m.ThreadTS != "" || m.Text != want {
		t.Errorf("@here page: %s/%s (thread %q) %q; want a top-level %q in %s", m.Channel, m.TS, m.ThreadTS, m.Text, want, channel)
	}
	if want := pageMetadata(here.Delivery.Key, id); string(m.Metadata) != want {
		t.Errorf("metadata = %s, want %s", m.Metadata, want)
	}

	// Once it is posted, the mention links to it.
	h.sync(id)
	incMsg := h.message(id)
	group := h.pageOf(id, "!subteam^S0ONCALL")
	groupID, err := pager.Send(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("<!subteam^S0ONCALL> <%s|Incident #%d> needs someone: HighErrorRate",
		fakeslack.PermalinkURL(incMsg.Channel, incMsg.TS), id)
	if m := h.posted(groupID); m.Text != want {
		t.Errorf("user group page = %q, want %q", m.Text, want)
	}

	for _, tt := range []struct {
		p    oncall.Page
		want string
	}{{here, hereID}, {group, groupID}} {
		if got, found, err := pager.Find(ctx, tt.p, since); err != nil || !found || got != tt.want {
			t.Errorf("Find %s = %q, %v, %v; want %q", tt.p.Delivery.Person, got, found, err, tt.want)
		}
	}
	if got := len(h.fake.State().TopLevel(channel)); got != 3 {
		t.Errorf("%d messages in the channel, want 3 (two pages and the incident)", got)
	}
}

// retryDelayer is how the delivery worker finds a rate limit.
type retryDelayer interface{ RetryDelay() time.Duration }

func TestPageErrorClassification(t *testing.T) {
	h, _ := newPageHarness(t)
	ctx := t.Context()
	pager := h.bot.Pager()
	id := h.record("disk", oncall.AlertFiring)
	h.sync(id)

	tests := []struct {
		name   string
		person string
		edit   func(*oncall.Page)
		fault  func(*fakeslack.Server)
		find   bool // Find, not Send
		want   string
		delay  time.Duration
	}{
		{name: "rate limited", person: "alice@example.com",
			fault: func(f *fakeslack.Server) { f.FailNext("chat.postMessage", 1, 429, 7*time.Second) },
			want:  "rate limited", delay: 7 * time.Second},
		{name: "server error", person: "alice@example.com",
			fault: func(f *fakeslack.Server) { f.FailNext("chat.postMessage", 1, 500, 0) }, want: "transient"},
		{name: "channel_not_found", person: oncall.MentionChannel,
			fault: func(f *fakeslack.Server) { f.FailNextError("chat.postMessage", 1, "channel_not_found") }, want: "permanent"},
		{name: "is_archived", person: oncall.MentionHere,
			fault: func(f *fakeslack.Server) { f.FailNextError("chat.postMessage", 1, "is_archived") }, want: "permanent"},
		{name: "user_not_found", person: bob,
			fault: func(f *fakeslack.Server) { f.FailNextError("conversations.open", 1, "user_not_found") }, want: "permanent"},
		{name: "slack's own trouble", person: bob,
			fault: func(f *fakeslack.Server) { f.FailNextError("chat.postMessage", 1, "internal_error") }, want: "transient"},
		{name: "lookup fails", person: "carol@example.com",
			fault: func(f *fakeslack.Server) { f.FailNext("users.lookupByEmail", 1, 503, 0) }, want: "transient"},
		{name: "nobody in Slack", person: "nobody@example.com", want: "permanent"},
		{name: "not a name", person: "Mallory", want: "permanent"},
		{name: "unknown mention", person: "!everyone", want: "permanent"},
		{name: "not by Slack", person: bob, edit: func(p *oncall.Page) { p.Delivery.Channel = oncall.NotifySMS }, want: "permanent"},
		{name: "mention without a channel", person: oncall.MentionHere,
			edit: func(p *oncall.Page) { p.Incident.Channel, p.Incident.ID = "", 0; p.Delivery.IncidentID = 1 << 40 },
			want: "permanent"},
		{name: "find rate limited", person: "alice@example.com", find: true,
			fault: func(f *fakeslack.Server) { f.FailNext("conversations.history", 1, 429, 2*time.Second) },
			want:  "rate limited", delay: 2 * time.Second},
		{name: "find server error", person: bob, find: true,
			fault: func(f *fakeslack.Server) { f.FailNext("conversations.history", 1, 502, 0) }, want: "transient"},
		{name: "find missing scope", person: bob, find: true,
			fault: func(f *fakeslack.Server) { f.FailNextError("conversations.history", 1, "missing_scope") }, want: "permanent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.pageOf(id, tt.person)
			if tt.edit != nil {
				tt.edit(&p)
			}
			if tt.fault != nil {
				tt.fault(h.fake)
			}
			before := len(h.fake.Messages())
			var err error
			if tt.find {
				_, _, err = pager.Find(ctx, p, time.Now())
			} else {
				_, err = pager.Send(ctx, p)
			}
			if err == nil {
				t.Fatal("no error")
			}
			var rd retryDelayer
			got := "transient"
			switch {
			case errors.Is(err, oncall.ErrPermanent):
				got = "permanent"
			case errors.As(err, &rd) && rd.RetryDelay() > 0:
				got = "rate limited"
				if rd.RetryDelay() != tt.delay {
					t.Errorf("retry delay %s, want %s", rd.RetryDelay(), tt.delay)
				}
			}
			if got != tt.want {
				t.Errorf("error %q is %s, want %s", err, got, tt.want)
			}
			if n := len(h.fake.Messages()); n != before {
				t.Errorf("%d messages posted by a failed page", n-before)
			}
		})
	}
}

// command sends /oncall text as the user in channel C0TEST, with the
// fields given, and returns its ack.
func (h *harness) command(user, text string, fields map[string]string) fakeslack.Ack {
	h.t.Helper()
	all := map[string]string{"user_id": user, "text": text}
	for k, v := range fields {
		all[k] = v
	}
	ack, err := h.fake.SendSlashCommand(h.t.Context(), all)
	if err != nil {
		h.t.Fatal(err)
	}
	return ack
}

// ackText is the answer a slash command's ack carries, "" if none.
func ackText(t *testing.T, ack fakeslack.Ack) string {
	t.Helper()
	if len(ack.Payload) == 0 || string(ack.Payload) == "null" {
		return ""
	}
	var reply struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(ack.Payload, &reply); err != nil {
		t.Fatalf("ack payload %s: %v", ack.Payload, err)
	}
	if reply.ResponseType != "ephemeral" {
		t.Errorf("answer %+v is not ephemeral", reply)
	}
	return reply.Text
}

// answer waits for the nth (from 1) answer sent to the ack's response_url.
func (h *harness) answer(ack fakeslack.Ack, nth int) fakeslack.Response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	var got fakeslack.Response
	_, err := h.fake.WaitFor(ctx, func(st fakeslack.State) bool {
		n := 0
		for _, r := range st.Responses {
			if r.URL == ack.ResponseURL {
				if n++; n == nth {
					got = r
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		h.t.Fatalf("answer %d to the command: %v", nth, err)
	}
	if got.ResponseType != "ephemeral" {
		h.t.Errorf("answer %+v is not ephemeral", got)
	}
	return got
}

func TestEscalateCommand(t *testing.T) {
	h, _ := newPageHarness(t)
	id := h.record("queue", oncall.AlertFiring)
	h.sync(id)

	// Escalate with a note; the envelope delivered again escalates once.
	ack := h.command(alice, fmt.Sprintf("escalate #%d the database is down too", id), nil)
	if text := ackText(t, ack); text != "" {
		t.Fatalf("the ack answers %q; the escalation should come after it", text)
	}
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	if got, want := h.answer(ack, 1).Text, fmt.Sprintf("Escalated incident #%d.", id); got != want {
		t.Errorf("answer = %q, want %q", got, want)
	}
	if _, err := h.fake.Redeliver(t.Context(), ack.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	h.answer(ack, 2)
	if inc := h.incident(id); inc.Escalations != 1 {
		t.Errorf("%d escalations after a redelivered command, want 1", inc.Escalations)
	}
	want := []string{"<!here> Escalated by <@U0ALICE>: no escalation chain for this incident",
		"Note from <@U0ALICE> on escalating: the database is down too"}
	if got := h.replies(h.message(id)); len(got) < 2 || strings.Join(got[:2], "\n") != strings.Join(want, "\n") {
		t.Errorf("thread = %q, want %q first", got, want)
	}

	// Without the #: a new command, a new escalation.
	ack = h.command(bob, fmt.Sprint("escalate ", id), nil)
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	h.answer(ack, 1)
	if inc := h.incident(id); inc.Escalations != 2 {
		t.Errorf("%d escalations, want 2", inc.Escalations)
	}

	// Refused on the ack, nothing done.
	for text, want := range map[string]string{
		"escalate":        "Usage: `/oncall escalate <incident> [note]`",
		"escalate abc":    "`abc` is not an incident number.",
		"escalate #0":     "`#0` is not an incident number.",
		"escalate -3 now": "`-3` is not an incident number.",
	} {
		if got := ackText(t, h.command(alice, text, nil)); !strings.HasPrefix(got, want) {
			t.Errorf("/oncall %s answers %q, want %q", text, got, want)
		}
	}

	// Errors of the service are answered.
	ack = h.command(alice, "escalate 987654", nil)
	if err := h.workDone(); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("escalate a missing incident: %v", err)
	}
	if got := h.answer(ack, 1).Text; got != ":warning: Incident #987654 does not exist." {
		t.Errorf("answer = %q", got)
	}
	if _, _, err := h.db.Transition(t.Context(), id, oncall.ActionResolve, oncall.SlackActor(bob), ""); err != nil {
		t.Fatal(err)
	}
	ack = h.command(alice, fmt.Sprint("escalate ", id), nil)
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	if got := h.answer(ack, 1).Text; !strings.Contains(got, "is resolved: there is nothing to escalate") {
		t.Errorf("answer = %q", got)
	}
	if inc := h.incident(id); inc.Escalations != 2 {
		t.Errorf("%d escalations, want 2", inc.Escalations)
	}
}

func TestPageCommand(t *testing.T) {
	h, alerts := newPageHarness(t)
	ctx := t.Context()

	// A person by email: the batch names them as the config does.
	ack := h.command(carol, "page alice@example.com  checkout is down,\nsee the dashboard", map[string]string{"trigger_id": "T1.page"})
	if text := ackText(t, ack); text != "" {
		t.Fatalf("the ack answers %q; the page should come after it", text)
	}
	want := "Paging <@U0ALICE>: checkout is down,\nsee the dashboard. The incident will appear in <#C0TEST>."
	if got := h.answer(ack, 1).Text; got != want {
		t.Errorf("answer = %q, want %q", got, want)
	}
	batches := alerts.published()
	if len(batches) != 1 {
		t.Fatalf("%d batches published, want 1", len(batches))
	}
	b := batches[0]
	title := "checkout is down,\nsee the dashboard"
	if b.ID != "page-T1.page" || b.Integration != "slack" || b.Kind != "page" || b.GroupKey != "page:T1.page" ||
		b.Status != oncall.AlertFiring || b.Title != title || b.Severity != oncall.SeverityCritical ||
		b.Channel != "C0TEST" || b.Escalation != "page:user:alice@example.com" || b.ReceivedAt.IsZero() {
		t.Errorf("batch = %+v", b)
	}
	if b.Labels["paged_by"] != carol || b.Labels["target"] != "alice@example.com" || len(b.Labels) != 2 {
		t.Errorf("labels = %v", b.Labels)
	}
	if len(b.Alerts) != 1 || b.Alerts[0].Fingerprint == "" || b.Alerts[0].Status != oncall.AlertFiring || b.Alerts[0].Title != title {
		t.Errorf("alerts = %+v", b.Alerts)
	}
	// Storage takes it as it takes any batch: a new incident in the
	// command's channel, with the synthetic escalation.
	res, err := h.db.RecordBatch(ctx, b)
	if err != nil || !res.Created {
		t.Fatalf("record the batch: %+v, %v", res, err)
	}
	if inc := h.incident(res.IncidentID); inc.Channel != "C0TEST" || inc.Escalation != "page:user:alice@example.com" ||
		inc.Title != title || inc.Severity != oncall.SeverityCritical {
		t.Errorf("incident = %+v", inc)
	}

	// The envelope again: the same batch, which the queue stores once.
	if _, err := h.fake.Redeliver(ctx, ack.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	h.answer(ack, 2)
	if batches := alerts.published(); len(batches) != 2 || batches[1].ID != b.ID {
		t.Errorf("a redelivered command published %+v, want the same batch id again", batches)
	}

	// Other ways to name whom to page.
	for _, tt := range []struct {
		text, escalation, answer string
	}{
		{"page <@U0BOB|bob> help please", "page:user:U0BOB", "Paging <@U0BOB>: help please."},
		{"page @bob help please", "page:user:U0BOB", "Paging <@U0BOB>: help please."},
		{"page Primary db is slow", "page:schedule:primary", "Paging whoever is on call for *primary*: db is slow."},
		{"page db team replication lag", "page:schedule:db team", "Paging whoever is on call for *db team*: replication lag."},
	} {
		n := len(alerts.published())
		ack := h.command(carol, tt.text, nil)
		if got := h.answer(ack, 1).Text; !strings.HasPrefix(got, tt.answer) {
			t.Errorf("/oncall %s answers %q, want %q", tt.text, got, tt.answer)
		}
		if batches := alerts.published(); len(batches) != n+1 || batches[n].Escalation != tt.escalation {
			t.Errorf("/oncall %s published %d batches, the last %+v; want escalation %q", tt.text, len(batches)-n, batches[len(batches)-1], tt.escalation)
		}
	}

	// Refused, nothing published.
	n := len(alerts.published())
	for _, tt := range []struct {
		text, channel, want string
		onAck               bool
	}{
		{"page", "", "Usage: `/oncall page <person or schedule> <message>`", true},
		{"page alice@example.com", "", "Usage: `/oncall page", true},
		{"page db team", "", "Usage: `/oncall page", false},
		{"page nobody help", "", "`nobody` is not a Slack user oncall knows, nor a schedule. Name a person as @handle, a mention or an email; schedules: `db team`, `primary`.", false},
		{"page stranger@example.com help", "", "`stranger@example.com` is not a Slack user oncall knows", false},
		{"page alice@example.com help", "D0CAROL", "Run `/oncall page` in a channel", true},
	} {
		var fields map[string]string
		if tt.channel != "" {
			fields = map[string]string{"channel_id": tt.channel}
		}
		ack := h.command(carol, tt.text, fields)
		got := ackText(t, ack)
		if !tt.onAck {
			got = h.answer(ack, 1).Text
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("/oncall %s answers %q, want %q", tt.text, got, tt.want)
		}
	}
	if got := len(alerts.published()); got != n {
		t.Errorf("refused commands published %d batches", got-n)
	}

	// The queue refuses: the user is told.
	alerts.failWith(errors.New("nats: no responders"))
	ack = h.command(carol, "page bob@example.com help", nil)
	if got := h.answer(ack, 1).Text; !strings.Contains(got, "Could not page because of an internal error") {
		t.Errorf("answer = %q", got)
	}
}

func TestPageCommandWithoutQueue(t *testing.T) {
	h := newHarness(t)
	if got := ackText(t, h.command(alice, "page U0BOB help", nil)); !strings.Contains(got, "Paging from Slack is unavailable") {
		t.Errorf("answer = %q", got)
	}
	help := ackText(t, h.command(alice, "help", nil))
	for _, want := range []string{"/oncall page &lt;person or schedule&gt; &lt;message&gt;`", "/oncall escalate &lt;incident&gt; [note]`"} {
		if !strings.Contains(help, want) {
			t.Errorf("help does not show %q:\n%s", want, help)
		}
	}
}
