package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/schedule"
	"github.com/oncallbot/oncall/storage"
)

const (
	primary        = "primary"
	primaryChannel = "C0PRIMARY"
	alice          = "U0ALICE"
	bob            = "U0BOB"
	carol          = "U0CAROL"
	admin          = "U0ADMIN"
)

// noIncidents stands in for the incident service: schedules need none.
type noIncidents struct{}

func (noIncidents) Act(context.Context, int64, oncall.Action, oncall.Actor, string) (oncall.Incident, error) {
	return oncall.Incident{}, oncall.ErrNotFound
}

func (noIncidents) Silence(context.Context, int64, time.Time, oncall.Actor, string) (oncall.Incident, error) {
	return oncall.Incident{}, oncall.ErrNotFound
}

// schedHarness runs a bot with a real schedule service over a daily
// rotation (alice, then "Bob Builder", then carol, from handoff) and the
// overrides in a real database, against a fake Slack that knows the
// people by email.
type schedHarness struct {
	t       *testing.T
	fake    *fakeslack.Server
	db      *storage.DB
	handoff time.Time // alice's shift starts; bob's a day later, carol's two
}

func newSchedHarness(t *testing.T) *schedHarness {
	t.Helper()
	ctx := t.Context()
	fake, err := fakeslack.New(fakeslack.Config{Users: []fakeslack.User{
		{ID: alice, Email: "alice@example.com", Name: "alice", TZ: "Europe/Berlin"},
		{ID: bob, Email: "bob@example.com", Name: "bob", TZ: "America/New_York"},
		{ID: carol, Email: "carol@example.com", Name: "carol", TZ: "Asia/Tokyo"},
		{ID: admin, Email: "admin@example.com", Name: "admin"},
	}})
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
	logOut := io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))

	// The service reads the wall clock; an hour's margin keeps the test
	// clear of a handoff.
	handoff := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	svc := schedule.NewService([]schedule.Definition{{
		Name:    primary,
		Channel: primaryChannel,
		Rotations: []schedule.Rotation{{
			Users:    []string{"alice@example.com", "Bob Builder", carol},
			Shift:    24 * time.Hour,
			Handoff:  handoff,
			Location: time.UTC,
		}},
	}}, db, nil, log)
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := bot.New(bot.Config{
		BotToken:  fake.BotToken(),
		AppToken:  fake.AppToken(),
		APIURL:    fake.APIURL(),
		Logger:    log,
		Schedules: svc,
		Overrides: db,
		Users: []bot.UserRef{
			{Email: "alice@example.com"},
			{Email: "bob@example.com", Name: "Bob Builder"},
			{Slack: carol, Email: "carol@example.com"},
		},
		Admins:           []string{admin},
		ScheduleChannels: map[string]string{primary: primaryChannel},
	}, noIncidents{}, db)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- b.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &schedHarness{t: t, fake: fake, db: db, handoff: handoff}
}

func (h *schedHarness) wait(what string, cond func(fakeslack.State) bool) fakeslack.State {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	st, err := h.fake.WaitFor(ctx, cond)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
	return st
}

// command runs a slash command as the user and returns the answer the bot
// sends to its response_url.
func (h *schedHarness) command(user, text string) fakeslack.Response {
	h.t.Helper()
	ack, err := h.fake.SendSlashCommand(h.t.Context(), map[string]string{"user_id": user, "text": text})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(ack.Payload) != 0 && string(ack.Payload) != "null" {
		h.t.Fatalf("/oncall %s: the ack carries %s; the answer should come after it", text, ack.Payload)
	}
	var r fakeslack.Response
	h.wait("the answer to /oncall "+text, func(st fakeslack.State) bool {
		for _, x := range st.Responses {
			if x.URL == ack.ResponseURL {
				r = x
				return true
			}
		}
		return false
	})
	if r.User != user || r.ResponseType != "ephemeral" {
		h.t.Errorf("/oncall %s answered %+v, want an ephemeral answer to %s", text, r, user)
	}
	return r
}

// waitResponse waits for an answer to the user through a response_url.
func (h *schedHarness) waitResponse(user, contains string) fakeslack.Response {
	h.t.Helper()
	var found fakeslack.Response
	h.wait(fmt.Sprintf("an answer to %s saying %q", user, contains), func(st fakeslack.State) bool {
		for _, r := range st.Responses {
			if r.User == user && strings.Contains(r.Text, contains) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// dms returns the messages of the bot's DM with the user.
func (h *schedHarness) dms(user string) []fakeslack.Message {
	return h.fake.State().TopLevel(fakeslack.DMChannel(user))
}

func (h *schedHarness) waitDM(user, contains string) fakeslack.Message {
	h.t.Helper()
	var found fakeslack.Message
	h.wait(fmt.Sprintf("a DM to %s saying %q", user, contains), func(st fakeslack.State) bool {
		for _, m := range st.TopLevel(fakeslack.DMChannel(user)) {
			if strings.Contains(m.Text+string(m.Blocks), contains) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (h *schedHarness) overrides() []oncall.Override {
	h.t.Helper()
	list, err := h.db.Overrides(h.t.Context(), primary, h.handoff.Add(-24*time.Hour), time.Time{})
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

func (h *schedHarness) notes() []string {
	var out []string
	for _, m := range h.fake.State().TopLevel(primaryChannel) {
		out = append(out, m.Text)
	}
	return out
}

// openSwap runs /oncall swap as the user and returns the dialog.
func (h *schedHarness) openSwap(user string) fakeslack.View {
	h.t.Helper()
	if _, err := h.fake.SendSlashCommand(h.t.Context(), map[string]string{"user_id": user, "text": "swap"}); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	v, err := h.fake.WaitView(ctx, user, bot.CallbackIDSwap)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// submit submits the dialog and returns the errors the bot shows in it.
func (h *schedHarness) submit(v fakeslack.View, user string, values map[string]string) map[string]string {
	h.t.Helper()
	ack, err := h.fake.SubmitView(h.t.Context(), fakeslack.Submission{ViewID: v.ID, UserID: user, Values: values})
	if err != nil {
		h.t.Fatal(err)
	}
	var answer struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if len(ack.Payload) > 0 {
		if err := json.Unmarshal(ack.Payload, &answer); err != nil {
			h.t.Fatalf("ack payload %s: %v", ack.Payload, err)
		}
	}
	if answer.ResponseAction != "" && answer.ResponseAction != "errors" {
		h.t.Errorf("response_action = %q", answer.ResponseAction)
	}
	return answer.Errors
}

// shiftOptions returns the values of the dialog's shift select.
func shiftOptions(t *testing.T, v fakeslack.View) []string {
	t.Helper()
	var blocks []struct {
		BlockID string `json:"block_id"`
		Element struct {
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"element"`
	}
	if err := json.Unmarshal(v.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range blocks {
		if b.BlockID == "shift" {
			for _, o := range b.Element.Options {
				out = append(out, o.Value)
			}
		}
	}
	return out
}

func unix(t time.Time) string { return fmt.Sprint(t.Unix()) }

func TestSwapAcceptedShowsInWho(t *testing.T) {
	h := newSchedHarness(t)
	ctx := t.Context()

	who := h.command(alice, "who primary")
	if !strings.Contains(who.Text, "Now: <@U0ALICE> until <!date^"+unix(h.handoff.Add(24*time.Hour))) ||
		!strings.Contains(who.Text, "Next: <@U0BOB>") {
		t.Fatalf("/oncall who before the swap:\n%s", who.Text)
	}

	// Alice gives the rest of her shift to Bob with the dialog.
	v := h.openSwap(alice)
	options := shiftOptions(t, v)
	if len(options) == 0 || !strings.HasSuffix(options[0], "|"+unix(h.handoff.Add(24*time.Hour))+"|primary") {
		t.Fatalf("the dialog offers alice the shifts %q", options)
	}
	if errs := h.submit(v, alice, map[string]string{"shift": options[0], "colleague": bob}); len(errs) != 0 {
		t.Fatalf("the dialog refused a valid swap: %v", errs)
	}
	if v := h.fake.Views()[0]; !v.Closed {
		t.Error("the dialog stayed open after a valid swap")
	}
	request := h.waitDM(bob, bot.ActionIDSwapAccept)
	if !strings.Contains(request.Text, "<@U0ALICE> asks you") {
		t.Errorf("request DM text = %q", request.Text)
	}
	h.waitResponse(alice, "Asked <@U0BOB>")

	// Bob accepts: the override is stored, both are told, the channel too.
	if _, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: request.Channel, TS: request.TS, UserID: bob, ActionID: bot.ActionIDSwapAccept}); err != nil {
		t.Fatal(err)
	}
	h.waitDM(alice, "<@U0BOB> accepted")
	h.wait("the note in the schedule's channel", func(st fakeslack.State) bool { return len(st.TopLevel(primaryChannel)) == 1 })
	if n := h.notes(); !strings.Contains(n[0], "<@U0BOB> takes over *primary*") || !strings.Contains(n[0], "from <@U0ALICE>") {
		t.Errorf("channel note = %q", n[0])
	}
	list := h.overrides()
	if len(list) != 1 {
		t.Fatalf("%d overrides stored, want 1: %+v", len(list), list)
	}
	o := list[0]
	if o.Person != "bob@example.com" || !o.End.Equal(h.handoff.Add(24*time.Hour)) || o.CreatedBy != oncall.SlackActor(alice) {
		t.Errorf("override = %+v, want bob@example.com (as the config knows him) until the end of alice's shift, made by alice", o)
	}
	if m, _ := h.fake.State().Message(request.Channel, request.TS); m.UpdateCount != 1 || len(m.Buttons()) != 0 ||
		!strings.Contains(m.Text, "You accepted") {
		t.Errorf("the request after Accept: %d updates, buttons %v, text %q", m.UpdateCount, m.Buttons(), m.Text)
	}

	// /oncall who reflects it at once.
	who = h.command(carol, "who")
	if !strings.Contains(who.Text, "Now: <@U0BOB> until <!date^"+unix(h.handoff.Add(48*time.Hour))) {
		t.Errorf("/oncall who after the swap:\n%s", who.Text)
	}

	// A second click on the request as Bob saw it stores nothing more.
	if _, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: request.Channel, TS: request.TS, UserID: bob,
		ActionID: bot.ActionIDSwapAccept, Blocks: request.Blocks}); err != nil {
		t.Fatal(err)
	}
	h.wait("the second Accept handled", func(st fakeslack.State) bool {
		m, _ := st.Message(request.Channel, request.TS)
		return m.UpdateCount == 2
	})
	if n := len(h.overrides()); n != 1 {
		t.Errorf("a second Accept: %d overrides, want 1", n)
	}
	if n := h.notes(); len(n) != 1 {
		t.Errorf("a second Accept posted again: %q", n)
	}
	if n := len(h.dms(alice)); n != 1 {
		t.Errorf("alice got %d DMs after a double Accept, want 1", n)
	}
}

func TestSwapDoubleAcceptAtOnce(t *testing.T) {
	h := newSchedHarness(t)
	ctx := t.Context()
	// Bob gives his next shift (tomorrow) to carol.
	v := h.openSwap(bob)
	options := shiftOptions(t, v)
	want := fmt.Sprintf("%d|%d|primary", h.handoff.Add(24*time.Hour).Unix(), h.handoff.Add(48*time.Hour).Unix())
	if len(options) == 0 || options[0] != want {
		t.Fatalf("the dialog offers bob %q, want %q first", options, want)
	}
	if errs := h.submit(v, bob, map[string]string{"shift": want, "colleague": carol}); len(errs) != 0 {
		t.Fatal(errs)
	}
	request := h.waitDM(carol, bot.ActionIDSwapAccept)

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: request.Channel, TS: request.TS, UserID: carol,
				ActionID: bot.ActionIDSwapAccept, Blocks: request.Blocks}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	h.wait("both clicks handled", func(st fakeslack.State) bool {
		m, _ := st.Message(request.Channel, request.TS)
		return m.UpdateCount == 2
	})
	if list := h.overrides(); len(list) != 1 || list[0].Person != carol {
		t.Errorf("two Accepts at once stored %+v, want one override for %s", list, carol)
	}
	if n := h.notes(); len(n) != 1 {
		t.Errorf("channel notes = %q, want one", n)
	}
}

func TestSwapDeclined(t *testing.T) {
	h := newSchedHarness(t)
	ctx := t.Context()
	v := h.openSwap(alice)
	// A time range instead of a shift: the first hour of alice's shift
	// still ahead.
	from := h.handoff.Add(2 * time.Hour)
	if errs := h.submit(v, alice, map[string]string{"schedule": primary, "from": unix(from), "to": unix(from.Add(time.Hour)), "colleague": carol}); len(errs) != 0 {
		t.Fatal(errs)
	}
	request := h.waitDM(carol, bot.ActionIDSwapDecline)

	// Someone else cannot answer it.
	if _, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: request.Channel, TS: request.TS, UserID: bob, ActionID: bot.ActionIDSwapAccept}); err != nil {
		t.Fatal(err)
	}
	h.waitResponse(bob, "This request is for <@U0CAROL>")

	if _, err := h.fake.ClickButton(ctx, fakeslack.Click{Channel: request.Channel, TS: request.TS, UserID: carol, ActionID: bot.ActionIDSwapDecline}); err != nil {
		t.Fatal(err)
	}
	h.waitDM(alice, "<@U0CAROL> declined")
	if m, _ := h.fake.State().Message(request.Channel, request.TS); !strings.Contains(m.Text, "You declined") || len(m.Buttons()) != 0 {
		t.Errorf("the request after Decline: %q, buttons %v", m.Text, m.Buttons())
	}
	if list := h.overrides(); len(list) != 0 {
		t.Errorf("a declined swap stored %+v", list)
	}
	if n := h.notes(); len(n) != 0 {
		t.Errorf("a declined swap was noted in the channel: %q", n)
	}
}

func TestSwapDialogRefuses(t *testing.T) {
	h := newSchedHarness(t)
	aliceShift := map[string]string{"schedule": primary, "from": unix(h.handoff.Add(2 * time.Hour)), "to": unix(h.handoff.Add(3 * time.Hour))}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name   string
		user   string
		values map[string]string
		field  string // the input with the error; "" for none
		want   string
	}{
		{"not the owner", carol, with(aliceShift, "colleague", bob), "from", "You are not on call on primary"},
		{"nothing picked", carol, map[string]string{"colleague": bob}, "shift", "Pick one of your shifts"},
		{"to oneself", alice, with(aliceShift, "colleague", alice), "colleague", "That is you"},
		{"to who has it", alice, map[string]string{"schedule": primary, "from": unix(h.handoff.Add(26 * time.Hour)),
			"to": unix(h.handoff.Add(27 * time.Hour)), "colleague": carol}, "from", "You are not on call"},
		{"end before start", alice, with(aliceShift, "to", unix(h.handoff.Add(time.Hour)), "colleague", bob), "from", "The end must be after the start"},
		{"over", alice, with(aliceShift, "from", unix(h.handoff.Add(-5*time.Hour)), "to", unix(h.handoff.Add(-4*time.Hour)), "colleague", bob), "from", "That time is over"},
		{"half a range", alice, map[string]string{"schedule": primary, "from": unix(h.handoff.Add(2 * time.Hour)), "colleague": bob}, "to", "Pick the end"},
		{"an admin may", admin, with(aliceShift, "colleague", carol), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := h.openSwap(tt.user)
			errs := h.submit(v, tt.user, tt.values)
			if tt.field == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v, want none", errs)
				}
				return
			}
			if !strings.Contains(errs[tt.field], tt.want) {
				t.Errorf("errors = %v, want %q at %s", errs, tt.want, tt.field)
			}
			if latest := h.fake.Views()[len(h.fake.Views())-1]; latest.Closed {
				t.Error("the dialog closed although the bot refused")
			}
		})
	}
	h.waitDM(carol, "<@U0ADMIN> asks you") // the admin's request went out
	if list := h.overrides(); len(list) != 0 {
		t.Errorf("refused dialogs stored %+v", list)
	}
}

func TestOverrideCommandAndCancel(t *testing.T) {
	h := newSchedHarness(t)
	ctx := t.Context()
	// Carol (in Tokyo) takes two hours of Bob's shift, typed in her time.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	start := h.handoff.Add(30 * time.Hour)
	end := start.Add(2 * time.Hour)
	layout := "2006-01-02T15:04"
	r := h.command(carol, fmt.Sprintf("override primary %s %s", start.In(tokyo).Format(layout), end.In(tokyo).Format(layout)))
	if !strings.Contains(r.Text, "You are on call for *primary*") {
		t.Fatalf("answer to /oncall override: %q", r.Text)
	}
	list := h.overrides()
	if len(list) != 1 || !list[0].Start.Equal(start) || !list[0].End.Equal(end) || list[0].Person != carol {
		t.Fatalf("overrides = %+v, want carol from %s to %s", list, start, end)
	}
	h.waitDM(bob, "<@U0CAROL> takes over from you")
	h.wait("the note in the channel", func(st fakeslack.State) bool { return len(st.TopLevel(primaryChannel)) == 1 })

	// Again: nothing more.
	r = h.command(carol, fmt.Sprintf("override primary %s %s", start.In(tokyo).Format(layout), end.In(tokyo).Format(layout)))
	if n := len(h.overrides()); n != 1 {
		t.Errorf("the same override twice: %d stored (answer %q)", n, r.Text)
	}

	sched := h.command(alice, "schedule primary")
	for _, want := range []string{"<@U0ALICE>", "<@U0BOB>", "<@U0CAROL>", "<!date^" + unix(start)} {
		if !strings.Contains(sched.Text, want) {
			t.Errorf("/oncall schedule lacks %q:\n%s", want, sched.Text)
		}
	}
	me := h.command(carol, "me")
	if !strings.Contains(me.Text, "*primary*: "+"<!date^"+unix(start)) {
		t.Errorf("/oncall me for carol lacks the override:\n%s", me.Text)
	}

	// Bob (whose time it was) sees it but cannot cancel it; carol can.
	if r := h.command(bob, "overrides"); len(r.Buttons()) != 0 || !strings.Contains(string(r.Blocks), `@U0CAROL`) {
		t.Errorf("bob's list: buttons %v, blocks %s", r.Buttons(), r.Blocks)
	}
	list2 := h.command(carol, "overrides primary")
	if len(list2.Buttons()) != 1 {
		t.Fatalf("carol's list has buttons %v, want one Cancel", list2.Buttons())
	}
	// A Cancel by someone else is refused even with the button.
	if _, err := h.fake.ClickResponseButton(ctx, list2, bob, bot.ActionIDOverrideCancel); err != nil {
		t.Fatal(err)
	}
	h.waitResponse(bob, "Only the person who made")
	if n := len(h.overrides()); n != 1 {
		t.Errorf("bob's Cancel: %d overrides, want 1", n)
	}
	if _, err := h.fake.ClickResponseButton(ctx, list2, carol, bot.ActionIDOverrideCancel); err != nil {
		t.Fatal(err)
	}
	h.waitResponse(carol, "Cancelled the override")
	if n := len(h.overrides()); n != 0 {
		t.Errorf("%d overrides after the Cancel", n)
	}
	h.wait("the cancel noted", func(st fakeslack.State) bool { return len(st.TopLevel(primaryChannel)) == 2 })
	if who := h.command(alice, "schedule"); strings.Contains(who.Text, "<!date^"+unix(start)+"^") {
		t.Errorf("the cancelled override still shows:\n%s", who.Text)
	}
}

func TestOverrideDialog(t *testing.T) {
	h := newSchedHarness(t)
	if _, err := h.fake.SendSlashCommand(t.Context(), map[string]string{"user_id": alice, "text": "override"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	v, err := h.fake.WaitView(ctx, alice, bot.CallbackIDOverride)
	if err != nil {
		t.Fatal(err)
	}
	start := h.handoff.Add(50 * time.Hour) // carol's
	if errs := h.submit(v, alice, map[string]string{"schedule": primary, "from": unix(start), "to": unix(start)}); !strings.Contains(errs["from"], "after the start") {
		t.Errorf("an empty range: errors %v", errs)
	}
	if errs := h.submit(v, alice, map[string]string{"schedule": primary, "from": unix(start), "to": unix(start.Add(time.Hour))}); len(errs) != 0 {
		t.Fatal(errs)
	}
	h.waitDM(carol, "<@U0ALICE> takes over from you")
	if list := h.overrides(); len(list) != 1 || list[0].Person != "alice@example.com" || !list[0].Start.Equal(start) {
		t.Errorf("overrides = %+v", list)
	}
}

func TestScheduleCommandsWithoutSchedules(t *testing.T) {
	h := newHarness(t)
	for _, text := range []string{"who", "schedule", "me", "swap", "override", "overrides"} {
		ack, err := h.fake.SendSlashCommand(t.Context(), map[string]string{"text": text})
		if err != nil {
			t.Fatal(err)
		}
		var reply struct{ Text string }
		if err := json.Unmarshal(ack.Payload, &reply); err != nil || !strings.Contains(reply.Text, "No schedules are configured") {
			t.Errorf("/oncall %s without schedules: %s (%v)", text, ack.Payload, err)
		}
	}
}

func TestUnknownSchedule(t *testing.T) {
	h := newSchedHarness(t)
	if r := h.command(alice, "who nope"); r.Text != "Unknown schedule `nope`. Schedules: `primary`." {
		t.Errorf("answer = %q", r.Text)
	}
}
