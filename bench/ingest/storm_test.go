package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/integrations"
	"github.com/oncallbot/oncall/internal/fakeslack"
)

// The bench config sets the rate limit the storm runs ask for, and leaves
// the default alone otherwise.
func TestBenchConfigRateLimit(t *testing.T) {
	for _, limit := range []int{0, 1000000} {
		c, err := config.Parse("oncall.yaml", []byte(benchConfig(routes(2), limit)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("rate limit %d: %v", limit, err)
		}
		for _, in := range c.OncallIntegrations() {
			if in.RateLimit != limit {
				t.Errorf("rate limit %d: integration %s has %d", limit, in.Name, in.RateLimit)
			}
		}
	}
}

func TestStormLoadRecord(t *testing.T) {
	t0 := time.Now()
	var l stormLoad
	for _, s := range []sent{
		{status: http.StatusAccepted, at: t0.Add(2 * time.Second), latency: 2 * time.Millisecond},
		{status: http.StatusAccepted, at: t0.Add(time.Second), latency: time.Millisecond},
		{status: http.StatusTooManyRequests, retryAfter: "1"},
		{status: http.StatusTooManyRequests, retryAfter: "2"},
		{status: http.StatusBadRequest},
		{err: errors.New("connection refused")},
	} {
		l.record(s)
	}
	if l.sent != 6 || l.accepted != 2 || l.limited != 2 || l.other != 2 {
		t.Errorf("sent, 202, 429, other = %d, %d, %d, %d; want 6, 2, 2, 2", l.sent, l.accepted, l.limited, l.other)
	}
	if !l.lastAccepted.Equal(t0.Add(2*time.Second)) || l.retryAfter != "1" || l.firstOther != "HTTP 400" {
		t.Errorf("last 202 %s, Retry-After %q, first other %q; want +2s, \"1\", \"HTTP 400\"",
			l.lastAccepted.Sub(t0), l.retryAfter, l.firstOther)
	}
}

// The storm's Slack accounting, against the fake driven by slack-go: the
// incident message and its versions, a thread reply, a notice, a 429, and
// a message in another channel that must not count.
func TestStormSlackAccounting(t *testing.T) {
	const channel, other, marker = "C0STORM", "C0OTHER", "[storm-x]"
	fake, err := fakeslack.New(fakeslack.Config{Channels: []string{channel, other}})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))
	ctx := context.Background()
	message := func(n, count int) []slack.MsgOption {
		text := "Triggered #1 [critical] [storm-x] High 5xx rate (alert " + strconv.Itoa(n) + ", pod p)"
		status := slack.NewTextBlockObject(slack.MarkdownType, "Severity: *Critical* · "+strconv.Itoa(count)+" alerts received", false, false)
		return []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(slack.NewSectionBlock(status, nil, nil))}
	}
	watch := &stormWatch{channel: channel, marker: marker}

	_, ts, err := api.PostMessageContext(ctx, channel, message(0, 1)...)
	if err != nil {
		t.Fatal(err)
	}
	watch.observe(fake.State(), time.Now())
	if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, message(4, 5)...); err != nil {
		t.Fatal(err)
	}
	// Two updates between two observations: both versions are recorded.
	if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, message(9, 10)...); err != nil {
		t.Fatal(err)
	}
	fake.FailNextIn("chat.update", channel, 1, http.StatusTooManyRequests, time.Second)
	if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, message(9, 10)...); err == nil {
		t.Fatal("the fake's 429 was not an error")
	}
	if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText(":warning: over the rate limit", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, other, message(0, 1)...); err != nil {
		t.Fatal(err)
	}
	st := fake.State()
	watch.observe(st, time.Now())

	got := countSlack(st, channel, marker)
	want := slackCounts{messages: 1, posts: 1, otherPosts: 1, otherText: ":warning: over the rate limit", replies: 1,
		updates: 3, rateLimited: 1}
	if got != want {
		t.Errorf("countSlack = %+v\nwant %+v", got, want)
	}
	versions := watch.snapshot()
	var counts, titles []int
	for _, v := range versions {
		counts, titles = append(counts, v.count), append(titles, v.title)
	}
	if !slices.Equal(counts, []int{1, 5, 10}) || !slices.Equal(titles, []int{0, 4, 9}) {
		t.Errorf("versions show counts %v and alerts %v; want [1 5 10] and [0 4 9]", counts, titles)
	}
	if at, ok := firstShowing(versions, 10); !ok || !at.Equal(versions[2].at) {
		t.Errorf("firstShowing(10) = %v, %v; want the third version's time", at, ok)
	}
	if _, ok := firstShowing(versions, 11); ok {
		t.Error("firstShowing(11) found a version")
	}
}

func TestShownCount(t *testing.T) {
	for _, tc := range []struct {
		blocks string
		want   int
	}{
		{`[{"text":{"text":"Severity: *Critical* · 1 alert received · Webhook"}}]`, 1},
		{`[{"text":{"text":"3 firing, 1 resolved · 10000 alerts received"}}]`, 10000},
		{`[{"text":{"text":"no count"}}]`, -1},
	} {
		if got := shownCount([]byte(tc.blocks)); got != tc.want {
			t.Errorf("shownCount(%s) = %d, want %d", tc.blocks, got, tc.want)
		}
	}
}

func TestLimitText(t *testing.T) {
	if got, want := limitText(0), "default ("+strconv.Itoa(integrations.DefaultRateLimit)+")"; got != want {
		t.Errorf("limitText(0) = %q, want %q", got, want)
	}
	if got := limitText(1000000); got != "1000000" {
		t.Errorf("limitText(1000000) = %q", got)
	}
}
