package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/storage"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const channel = "C0INCIDENTS"

// syncingService stands in for escalation.Service: the real state change in
// storage, then the sync its NOTIFY message leads to. Each Act reports its
// outcome on done, so tests know when the work of a click is over.
type syncingService struct {
	db   *storage.DB
	bot  *bot.Bot
	done chan error

	mu   sync.Mutex
	gate chan struct{} // when set, Act waits for it to close
}

func (s *syncingService) Act(ctx context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (oncall.Incident, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	inc, _, err := s.db.Transition(ctx, id, a, actor, key)
	if err == nil {
		err = s.bot.SyncIncident(ctx, id)
	}
	s.done <- err
	return inc, err
}

func (s *syncingService) Silence(ctx context.Context, id int64, until time.Time, actor oncall.Actor, key string) (oncall.Incident, error) {
	var (
		inc oncall.Incident
		err error
	)
	if until.IsZero() {
		inc, _, err = s.db.Unsilence(ctx, id, actor, key)
	} else {
		inc, _, err = s.db.Silence(ctx, id, until, actor, key)
	}
	if err == nil {
		err = s.bot.SyncIncident(ctx, id)
	}
	s.done <- err
	return inc, err
}

func (s *syncingService) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(gate)
	}
}

// clock is the bot's clock in tests: it moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// crashingStore is the database the bot uses, except that MarkEventPosted
// can be made to fail, as if the process died after Slack took a thread
// reply and before its ts was saved.
type crashingStore struct {
	*storage.DB
	mu        sync.Mutex
	failMarks int // the next failMarks calls of MarkEventPosted fail
}

var errCrash = errors.New("crashed before saving the ts")

func (s *crashingStore) MarkEventPosted(ctx context.Context, eventID int64, ts string) error {
	s.mu.Lock()
	crash := s.failMarks > 0
	if crash {
		s.failMarks--
	}
	s.mu.Unlock()
	if crash {
		return errCrash
	}
	return s.DB.MarkEventPosted(ctx, eventID, ts)
}

// crashBeforeSavingTS makes the next n saves of an event's ts fail.
func (s *crashingStore) crashBeforeSavingTS(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failMarks = n
}

type harness struct {
	t     *testing.T
	fake  *fakeslack.Server
	db    *storage.DB
	store *crashingStore // db as the bot sees it
	bot   *bot.Bot
	svc   *syncingService
	clock *clock
	seq   int
}

// newHarness connects a running bot to a fake Slack and a fresh database
// with one Alertmanager integration posting to channel. The bot's clock
// stands still until the test moves it, and posts are not paced.
func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, fakeslack.Config{}, bot.Config{})
}

// newHarnessWith is newHarness with a fake Slack of fakeCfg, and a bot of
// cfg (its Slack settings and logger filled in).
func newHarnessWith(t *testing.T, fakeCfg fakeslack.Config, cfg bot.Config) *harness {
	t.Helper()
	ctx := t.Context()
	fake, err := fakeslack.New(fakeCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	db, err := storage.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncIntegrations(ctx, []oncall.Integration{{Name: "prometheus", Kind: "alertmanager", Token: "prom-token", Channel: channel}}); err != nil {
		t.Fatal(err)
	}
	logOut := io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	svc := &syncingService{db: db, done: make(chan error, 16)}
	store := &crashingStore{DB: db}
	cfg.BotToken, cfg.AppToken, cfg.APIURL = fake.BotToken(), fake.AppToken(), fake.APIURL()
	cfg.Logger = slog.New(slog.NewTextHandler(logOut, nil))
	b, err := bot.New(cfg, svc, store)
	if err != nil {
		t.Fatal(err)
	}
	svc.bot = b
	clk := &clock{now: time.Now().Truncate(time.Microsecond)} // as Postgres keeps it
	bot.SetClock(b, clk.Now)
	bot.SetPacing(b, rate.Inf, 1)

	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- b.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &harness{t: t, fake: fake, db: db, store: store, bot: b, svc: svc, clock: clk}
}

// record stores a batch of one alert of the group, as the processor does.
func (h *harness) record(group string, status oncall.AlertStatus, edit ...func(*oncall.AlertBatch)) int64 {
	h.t.Helper()
	h.seq++
	b := oncall.AlertBatch{
		ID:          fmt.Sprintf("batch-%d", h.seq),
		Integration: "prometheus",
		Kind:        "alertmanager",
		ReceivedAt:  time.Now(),
		GroupKey:    group,
		Status:      status,
		Title:       "HighErrorRate",
		Message:     "checkout answers 5xx",
		Severity:    oncall.SeverityCritical,
		Labels:      map[string]string{"service": "checkout"},
		Alerts:      []oncall.Alert{{Fingerprint: "fp-" + group, Status: status, Title: "HighErrorRate"}},
	}
	for _, e := range edit {
		e(&b)
	}
	res, err := h.db.RecordBatch(h.t.Context(), b)
	if err != nil {
		h.t.Fatal(err)
	}
	return res.IncidentID
}

func (h *harness) sync(id int64) {
	h.t.Helper()
	if err := h.bot.SyncIncident(h.t.Context(), id); err != nil {
		h.t.Fatalf("sync incident %d: %v", id, err)
	}
}

// message returns the incident's Slack message as the fake holds it.
func (h *harness) message(id int64) fakeslack.Message {
	h.t.Helper()
	ref, ok, err := h.db.SlackMessage(h.t.Context(), id)
	if err != nil || !ok {
		h.t.Fatalf("Slack message of incident %d: found %v, %v", id, ok, err)
	}
	m, ok := h.fake.State().Message(ref.Channel, ref.TS)
	if !ok {
		h.t.Fatalf("the fake has no message %s for incident %d", ref.TS, id)
	}
	return m
}

func (h *harness) replies(m fakeslack.Message) []string {
	var out []string
	for _, r := range h.fake.State().Replies(m.Channel, m.TS) {
		out = append(out, r.Text)
	}
	return out
}

// click clicks a button of the incident's message and waits until the
// click's work is done.
func (h *harness) click(id int64, user, actionID string, blocks json.RawMessage) (fakeslack.Ack, error) {
	h.t.Helper()
	m := h.message(id)
	ack, err := h.fake.ClickButton(h.t.Context(), fakeslack.Click{Channel: m.Channel, TS: m.TS, UserID: user, ActionID: actionID, Blocks: blocks})
	if err != nil {
		h.t.Fatalf("click %s: %v", actionID, err)
	}
	return ack, h.workDone()
}

func (h *harness) workDone() error {
	h.t.Helper()
	select {
	case err := <-h.svc.done:
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatal("the bot did not act on the click")
		return nil
	}
}

func (h *harness) incident(id int64) oncall.Incident {
	h.t.Helper()
	inc, err := h.db.Incident(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return inc
}

func (h *harness) eventKinds(id int64) []string {
	h.t.Helper()
	evs, err := h.db.Events(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Kind))
	}
	return out
}

// blockText returns the text of the message's block with the id: a
// section's text, a context's first element, an image's URL.
func blockText(t *testing.T, m fakeslack.Message, blockID string) string {
	t.Helper()
	var blocks []struct {
		BlockID  string `json:"block_id"`
		ImageURL string `json:"image_url"`
		Text     struct {
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Text json.RawMessage `json:"text"` // a string in contexts, an object in actions
		} `json:"elements"`
	}
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatalf("blocks of message %s: %v", m.TS, err)
	}
	for _, b := range blocks {
		switch {
		case b.BlockID != blockID:
		case b.ImageURL != "":
			return b.ImageURL
		case b.Text.Text != "":
			return b.Text.Text
		case len(b.Elements) > 0:
			var text string
			_ = json.Unmarshal(b.Elements[0].Text, &text)
			return text
		}
	}
	return ""
}

func statusLine(t *testing.T, m fakeslack.Message) string { return blockText(t, m, "status") }

func actionIDs(m fakeslack.Message) string {
	var ids []string
	for _, b := range m.Buttons() {
		ids = append(ids, b.ActionID)
	}
	return strings.Join(ids, ",")
}

func TestIncidentMessageAndButtons(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	id := h.record("checkout", oncall.AlertFiring)

	// A new incident: one message with three buttons, nothing in its thread.
	h.sync(id)
	m := h.message(id)
	if got := len(h.fake.State().TopLevel(channel)); got != 1 {
		t.Fatalf("%d messages in the channel, want 1", got)
	}
	if got := actionIDs(m); got != "incident_acknowledge,incident_resolve,incident_escalate" {
		t.Errorf("buttons = %s", got)
	}
	var meta struct {
		EventType    string `json:"event_type"`
		EventPayload struct {
			IncidentID int64 `json:"incident_id"`
		} `json:"event_payload"`
	}
	if err := json.Unmarshal(m.Metadata, &meta); err != nil || meta.EventType != "oncall_incident" || meta.EventPayload.IncidentID != id {
		t.Errorf("metadata = %s (%v), want oncall_incident with incident_id %d", m.Metadata, err, id)
	}
	if r := h.replies(m); len(r) != 0 {
		t.Errorf("thread replies for a new incident: %q", r)
	}
	if evs, err := h.db.UnpostedEvents(ctx, id); err != nil || len(evs) != 0 {
		t.Errorf("unposted events after sync: %v, %v", evs, err)
	}

	// Nothing changed: no Slack call at all.
	calls := len(h.fake.CallLog())
	h.sync(id)
	if got := h.fake.CallLog()[calls:]; len(got) != 0 {
		t.Errorf("a sync with nothing to change called Slack: %+v", got)
	}

	// Acknowledge: acked before the work is done, then the incident, the
	// message and the thread follow.
	firstVersion := m.Blocks
	release := h.svc.hold()
	ack, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: m.Channel, TS: m.TS, UserID: "U0ALICE", ActionID: bot.ActionIDAcknowledge})
	release()
	if err != nil {
		t.Fatalf("no ack while the click's work was held back: %v", err)
	}
	t.Logf("ack after %s", ack.Elapsed)
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); inc.Status != oncall.StatusAcknowledged || inc.AckedBy != oncall.SlackActor("U0ALICE") {
		t.Errorf("incident after Acknowledge: status %s by %q", inc.Status, inc.AckedBy)
	}
	m = h.message(id)
	if got := actionIDs(m); got != "incident_unacknowledge,incident_resolve,incident_escalate" {
		t.Errorf("buttons after Acknowledge = %s", got)
	}
	if !strings.HasPrefix(statusLine(t, m), "*Acknowledged* by <@U0ALICE> at <!date^") {
		t.Errorf("the message does not say who acknowledged: %s", m.Blocks)
	}
	if r := h.replies(m); len(r) != 1 || r[0] != "Acknowledged by <@U0ALICE>" {
		t.Errorf("thread = %q", r)
	}

	// The same envelope again, and a second click on the old message:
	// nothing changes twice.
	if _, err := h.fake.Redeliver(ctx, ack.EnvelopeID); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.click(id, "U0ALICE", bot.ActionIDAcknowledge, firstVersion); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.eventKinds(id), ","); got != "created,acknowledged" {
		t.Errorf("events after a redelivery and a double click = %s", got)
	}
	m = h.message(id)
	if r := h.replies(m); len(r) != 1 {
		t.Errorf("thread after a redelivery and a double click = %q", r)
	}
	if m.UpdateCount != 1 {
		t.Errorf("message updated %d times, want 1", m.UpdateCount)
	}

	// Escalate: the channel is called, the status stays.
	beforeEscalate := h.message(id).Blocks
	if _, err := h.click(id, "U0BOB", bot.ActionIDEscalate, nil); err != nil {
		t.Fatal(err)
	}
	if r := h.replies(h.message(id)); len(r) != 2 || r[1] != "<!here> Escalated by <@U0BOB>: no escalation chain for this incident" {
		t.Errorf("thread after Escalate = %q", r)
	}
	if inc := h.incident(id); inc.Status != oncall.StatusAcknowledged || inc.Escalations != 1 {
		t.Errorf("after Escalate: status %s, %d escalations, want acknowledged, 1", inc.Status, inc.Escalations)
	}
	// Escalate changes no status: a second click on the version that was
	// escalated from (a double click, or a colleague at the same moment)
	// must not escalate again.
	if _, err := h.click(id, "U0CAROL", bot.ActionIDEscalate, beforeEscalate); err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); inc.Escalations != 1 {
		t.Errorf("a double click on Escalate escalated %d times, want 1", inc.Escalations)
	}
	if !strings.Contains(string(h.message(id).Blocks), "escalated 1 time") {
		t.Errorf("the message does not show the escalation: %s", h.message(id).Blocks)
	}
	// A click on the message as it is now is a new escalation.
	if _, err := h.click(id, "U0CAROL", bot.ActionIDEscalate, nil); err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); inc.Escalations != 2 {
		t.Errorf("a second Escalate on the updated message: %d escalations, want 2", inc.Escalations)
	}

	// Resolve, then Reopen.
	if _, err := h.click(id, "U0BOB", bot.ActionIDResolve, nil); err != nil {
		t.Fatal(err)
	}
	m = h.message(id)
	if got := actionIDs(m); got != "incident_reopen" {
		t.Errorf("buttons after Resolve = %s", got)
	}
	if !strings.HasPrefix(statusLine(t, m), "*Resolved* by <@U0BOB> at <!date^") {
		t.Errorf("the message does not say who resolved: %s", m.Blocks)
	}
	if _, err := h.click(id, "U0ALICE", bot.ActionIDReopen, nil); err != nil {
		t.Fatal(err)
	}
	m = h.message(id)
	if got := actionIDs(m); got != "incident_acknowledge,incident_resolve,incident_escalate" {
		t.Errorf("buttons after Reopen = %s", got)
	}
	want := []string{"Acknowledged by <@U0ALICE>", "<!here> Escalated by <@U0BOB>: no escalation chain for this incident",
		"<!here> Escalated by <@U0CAROL>: no escalation chain for this incident", "Resolved by <@U0BOB>", "Reopened by <@U0ALICE>"}
	if got := h.replies(m); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("thread = %q, want %q", got, want)
	}
	if got := len(h.fake.State().TopLevel(channel)); got != 1 {
		t.Errorf("%d messages in the channel, want 1", got)
	}
}

func TestAlertsFromTheSource(t *testing.T) {
	h := newHarness(t)
	id := h.record("db", oncall.AlertFiring)
	h.sync(id)

	// A repeat joins the incident: the message is updated (once the
	// coalescing interval has passed), not posted again, and the repeat
	// gets no thread reply.
	if again := h.record("db", oncall.AlertFiring); again != id {
		t.Fatalf("the repeat opened incident %d, want %d", again, id)
	}
	h.clock.Advance(bot.UpdateInterval)
	h.sync(id)
	m := h.message(id)
	if m.UpdateCount != 1 || !strings.Contains(blockText(t, m, "summary"), "2 alerts received") {
		t.Errorf("after a repeat: %d updates, blocks %s", m.UpdateCount, m.Blocks)
	}

	// The source resolves it.
	h.record("db", oncall.AlertResolved)
	h.sync(id)
	m = h.message(id)
	if got := actionIDs(m); got != "incident_reopen" {
		t.Errorf("buttons after the source resolved = %s", got)
	}
	if r := h.replies(m); len(r) != 1 || r[0] != "Resolved by the source (Alertmanager)" {
		t.Errorf("thread = %q", r)
	}
	evs, err := h.db.Events(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	resolved := evs[len(evs)-1]
	reply := h.fake.State().Replies(m.Channel, m.TS)[0]
	wantMeta := fmt.Sprintf(`{"event_type":"oncall_event","event_payload":{"event_id":%d,"incident_id":%d}}`, resolved.ID, id)
	if string(reply.Metadata) != wantMeta {
		t.Errorf("reply metadata = %s, want %s", reply.Metadata, wantMeta)
	}
	if got := len(h.fake.State().TopLevel(channel)); got != 1 {
		t.Errorf("%d messages in the channel, want 1", got)
	}
	if evs, err := h.db.UnpostedEvents(t.Context(), id); err != nil || len(evs) != 0 {
		t.Errorf("unposted events: %v, %v", evs, err)
	}
}

func TestReopenConflictTellsTheUser(t *testing.T) {
	h := newHarness(t)
	first := h.record("api", oncall.AlertFiring)
	h.sync(first)
	if err := func() error { _, err := h.click(first, "U0ALICE", bot.ActionIDResolve, nil); return err }(); err != nil {
		t.Fatal(err)
	}
	second := h.record("api", oncall.AlertFiring) // the group fires again: a new incident
	if second == first {
		t.Fatal("the group's new alert joined the resolved incident")
	}
	h.sync(second)

	_, err := h.click(first, "U0ALICE", bot.ActionIDReopen, nil)
	if !errors.Is(err, oncall.ErrConflict) {
		t.Fatalf("reopen: %v, want a conflict", err)
	}
	st, err := h.fake.WaitFor(t.Context(), func(st fakeslack.State) bool { return len(st.Ephemerals) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if e := st.Ephemerals[0]; e.User != "U0ALICE" || e.Channel != channel || !strings.Contains(e.Text, "cannot be reopened") {
		t.Errorf("ephemeral = %+v", e)
	}
	if inc := h.incident(first); inc.Status != oncall.StatusResolved {
		t.Errorf("status = %s, want resolved", inc.Status)
	}
}

func TestSlashCommand(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		text string
		want string
	}{
		{"help", "`/oncall help`"},
		{"", "`/oncall help`"},
		{"  HELP  ", "*Acknowledge*"},
		{"frobnicate now", "Unknown command `frobnicate`. Try `/oncall help`."},
		{"<!channel>", "Unknown command `&lt;!channel&gt;`"},
		{"help ", "`/oncall maintenance &lt;integration&gt; &lt;duration&gt;`"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			ack, err := h.fake.SendSlashCommand(t.Context(), map[string]string{"text": tt.text})
			if err != nil {
				t.Fatal(err)
			}
			var reply struct {
				ResponseType string `json:"response_type"`
				Text         string `json:"text"`
			}
			if err := json.Unmarshal(ack.Payload, &reply); err != nil {
				t.Fatalf("ack payload %s: %v", ack.Payload, err)
			}
			if reply.ResponseType != "ephemeral" || !strings.Contains(reply.Text, tt.want) {
				t.Errorf("reply = %+v, want ephemeral text containing %q", reply, tt.want)
			}
		})
	}
}

func TestSyncRateLimited(t *testing.T) {
	h := newHarness(t)
	id := h.record("disk", oncall.AlertFiring)
	h.fake.FailNext("chat.postMessage", 1, 429, 3*time.Second)

	err := h.bot.SyncIncident(t.Context(), id)
	var ra *bot.RetryAfterError
	if !errors.As(err, &ra) || ra.RetryAfter != 3*time.Second {
		t.Fatalf("sync under a rate limit: %v, want a RetryAfterError of 3s", err)
	}
	// The post was claimed; Slack refused it, so the claim has no ts.
	if m, ok, err := h.db.SlackMessage(t.Context(), id); err != nil || !ok || m.TS != "" || m.Channel != channel {
		t.Errorf("after a refused post: %+v, %v, %v; want a claim in %s without a ts", m, ok, err, channel)
	}
	h.sync(id)
	if got := len(h.fake.State().TopLevel(channel)); got != 1 {
		t.Errorf("%d messages after the retry, want 1", got)
	}
	if n := h.fake.Calls("conversations.history"); n != 1 {
		t.Errorf("the retry looked in the history %d times, want 1", n)
	}
}

func TestSyncWithoutTheImageSlackRefuses(t *testing.T) {
	h := newHarness(t)
	id := h.record("grafana", oncall.AlertFiring, func(b *oncall.AlertBatch) {
		b.ImageURL = "https://grafana.example.com/render/panel.png"
	})
	h.fake.FailNextError("chat.postMessage", 1, "invalid_blocks")
	h.sync(id)
	m := h.message(id)
	if blockText(t, m, "image") != "" || !strings.Contains(string(m.Blocks), `"block_id":"summary"`) {
		t.Errorf("the image Slack refused is still there: %s", m.Blocks)
	}
	if n := h.fake.Calls("chat.postMessage"); n != 2 {
		t.Errorf("chat.postMessage called %d times, want 2 (with and without the image)", n)
	}
	h.sync(id)
	if n := h.fake.Calls("chat.update"); n != 0 {
		t.Errorf("an unchanged incident was updated %d times", n)
	}
}

func TestNewNeedsTokens(t *testing.T) {
	tests := []struct {
		name string
		cfg  bot.Config
	}{
		{"no tokens", bot.Config{}},
		{"no app token", bot.Config{BotToken: "xoxb-1"}},
		{"no bot token", bot.Config{AppToken: "xapp-1"}},
		{"tokens swapped", bot.Config{BotToken: "xapp-1", AppToken: "xoxb-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := bot.New(tt.cfg, &syncingService{}, &storage.DB{}); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestRunRefusesBadTokens(t *testing.T) {
	fake, err := fakeslack.New(fakeslack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	tests := []struct {
		name               string
		botToken, appToken string
	}{
		{"bot token", "xoxb-wrong", fake.AppToken()},
		{"app-level token", fake.BotToken(), "xapp-wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bot.New(bot.Config{BotToken: tt.botToken, AppToken: tt.appToken, APIURL: fake.APIURL(),
				Logger: slog.New(slog.DiscardHandler)}, &syncingService{}, &storage.DB{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := b.Run(ctx); err == nil || !strings.Contains(err.Error(), "invalid_auth") {
				t.Fatalf("Run: %v, want invalid_auth", err)
			}
		})
	}
}
