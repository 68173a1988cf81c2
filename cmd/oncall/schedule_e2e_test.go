package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/schedule"
)

const (
	alice           = "U0ALICE"
	bob             = "U0BOB"
	carol           = "U0CAROL"
	scheduleChannel = "C0PRIMARY1"
)

// TestSwapEndToEnd runs serve with a daily rotation (alice now, bob next)
// and the fake Slack: alice gives her shift to bob through
// /oncall swap, bob accepts, and /oncall who and both calendar feeds
// (the schedule's and bob's) show bob on call.
func TestSwapEndToEnd(t *testing.T) {
	ctx := t.Context()
	fake, err := fakeslack.New(fakeslack.Config{
		Channels: []string{webhookChannel, scheduleChannel, fakeslack.DMChannel(alice), fakeslack.DMChannel(bob), fakeslack.DMChannel(carol)},
		Users: []fakeslack.User{
			{ID: alice, Email: "alice@example.com", Name: "alice"},
			{ID: bob, Email: "bob@example.com", Name: "bob"},
			{ID: carol, Email: "carol@example.com", Name: "carol"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)

	// Alice's shift began an hour ago and lasts a day: no handoff during
	// the test, whatever the time of day.
	handoff := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	cfgPath := filepath.Join(t.TempDir(), "oncall.yaml")
	cfg := fmt.Sprintf(`timezone: UTC
users:
  - {email: alice@example.com, slack: %s}
  - {email: bob@example.com}
  - {email: carol@example.com, slack: %s}
schedules:
  - name: primary
    channel: %s
    rotation:
      users: [alice@example.com, bob@example.com]
      shift: 24h
      handoff: %s
integrations:
  - {name: deploys, kind: webhook, token: %s, channel: %s}
`, alice, carol, scheduleChannel, handoff.Format("2006-01-02T15:04:05"), webhookToken, webhookChannel)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, serveOptions{
		ConfigPath: cfgPath, DataDir: t.TempDir(), DatabaseURL: pgtest.NewDatabase(t),
		Slack:     bot.Config{BotToken: fake.BotToken(), AppToken: fake.AppToken(), APIURL: fake.APIURL()},
		PublicURL: "https://oncall.example.com",
	})
	waitReady(t, srv.URL)
	h := &slackUser{t: t, fake: fake}

	if who := h.command(carol, "who primary"); !strings.Contains(who, "<@U0ALICE>") {
		t.Fatalf("/oncall who before the swap:\n%s", who)
	}

	// The schedule's feed before the swap shows alice (and is cached: the
	// swap must still show at once).
	if got := onCallInFeed(t, h, srv.URL, carol, "schedule primary"); got != "alice@example.com" {
		t.Fatalf("the schedule's feed before the swap has %q on call, want alice@example.com", got)
	}

	// Alice gives her shift to bob with the dialog; bob accepts.
	if _, err := fake.SendSlashCommand(ctx, map[string]string{"user_id": alice, "text": "swap"}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	view, err := fake.WaitView(wctx, alice, bot.CallbackIDSwap)
	if err != nil {
		t.Fatal(err)
	}
	options := viewOptions(t, view, "shift")
	if len(options) == 0 {
		t.Fatalf("the swap dialog offers alice no shift: %s", view.Blocks)
	}
	if _, err := fake.SubmitView(ctx, fakeslack.Submission{ViewID: view.ID, UserID: alice,
		Values: map[string]string{"shift": options[0], "colleague": bob}}); err != nil {
		t.Fatal(err)
	}
	request := h.waitDM(bob, bot.ActionIDSwapAccept)
	if _, err := fake.ClickButton(ctx, fakeslack.Click{Channel: request.Channel, TS: request.TS, UserID: bob, ActionID: bot.ActionIDSwapAccept}); err != nil {
		t.Fatal(err)
	}
	h.waitDM(alice, "accepted")

	if who := h.command(carol, "who primary"); !strings.Contains(who, "Now: <@U0BOB>") {
		t.Errorf("/oncall who after the swap:\n%s", who)
	}

	// The schedule's feed and bob's own feed, as their links in Slack give
	// them, show bob on call now.
	for _, tc := range []struct{ user, command string }{{carol, "schedule primary"}, {bob, "me"}} {
		if got := onCallInFeed(t, h, srv.URL, tc.user, tc.command); got != "bob@example.com" {
			t.Errorf("the feed of /oncall %s has %q on call now, want bob@example.com", tc.command, got)
		}
	}
	if code, _, err := get(srv.URL + "/calendars/0123456789abcdef0123456789abcdef01234567.ics"); err != nil || code != http.StatusNotFound {
		t.Errorf("a made-up feed token: %d (%v), want 404", code, err)
	}
}

// onCallInFeed follows the calendar link in the answer to the command and
// returns who the feed has on call now.
func onCallInFeed(t *testing.T, h *slackUser, base, user, command string) string {
	t.Helper()
	answer := h.command(user, command)
	link := regexp.MustCompile(`https://oncall\.example\.com(/calendars/[0-9a-f]+\.ics)`).FindStringSubmatch(answer)
	if link == nil {
		t.Fatalf("/oncall %s shows no calendar link:\n%s", command, answer)
	}
	now := time.Now()
	var onNow []string
	for _, s := range fetchCalendar(t, base+link[1]).Shifts(now, now.Add(time.Second)) {
		onNow = append(onNow, s.Person)
	}
	return strings.Join(onNow, ",")
}

func fetchCalendar(t *testing.T, url string) *schedule.Calendar {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/calendar") {
		t.Fatalf("GET %s = %d %s (%v)\n%s", url, resp.StatusCode, resp.Header.Get("Content-Type"), err, body)
	}
	cal, err := schedule.ParseCalendar(body, time.UTC)
	if err != nil {
		t.Fatalf("the feed does not parse back: %v\n%s", err, body)
	}
	return cal
}

// slackUser drives the fake Slack as people would.
type slackUser struct {
	t    *testing.T
	fake *fakeslack.Server
}

// command runs /oncall text as user and returns the answer's text.
func (h *slackUser) command(user, text string) string {
	h.t.Helper()
	ack, err := h.fake.SendSlashCommand(h.t.Context(), map[string]string{"user_id": user, "text": text})
	if err != nil {
		h.t.Fatal(err)
	}
	var answer string
	h.wait("the answer to /oncall "+text, func(st fakeslack.State) bool {
		for _, r := range st.Responses {
			if r.URL == ack.ResponseURL {
				answer = r.Text
				return true
			}
		}
		return false
	})
	return answer
}

func (h *slackUser) waitDM(user, contains string) fakeslack.Message {
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

func (h *slackUser) wait(what string, cond func(fakeslack.State) bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), waitTimeout)
	defer cancel()
	if _, err := h.fake.WaitFor(ctx, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// viewOptions lists the option values of the select in the view's block.
func viewOptions(t *testing.T, v fakeslack.View, blockID string) []string {
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
		if b.BlockID == blockID {
			for _, o := range b.Element.Options {
				out = append(out, o.Value)
			}
		}
	}
	return out
}
