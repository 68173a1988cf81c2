package bot

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/golden"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

func hour(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

func TestRenderScheduleTextGolden(t *testing.T) {
	alice := slot{Schedule: "primary", Person: "alice@example.com", Slack: "U0ALICE", Start: hour(-2), End: hour(22)}
	bob := slot{Schedule: "primary", Person: "Bob <Builder>", Start: hour(22), End: hour(46)}
	carol := slot{Schedule: "primary", Person: "U0CAROL", Slack: "U0CAROL", Start: hour(30), End: hour(34)}
	tests := []struct {
		name string
		got  string
	}{
		{"who", renderWho([]whoEntry{
			{Schedule: "primary", Now: []slot{alice}, Next: []slot{bob}},
			{Schedule: "follow-the-sun", Now: []slot{alice, {Schedule: "follow-the-sun", Person: "U0DAN", Slack: "U0DAN", Start: hour(-1), End: hour(7)}}},
			{Schedule: "empty"},
			{Schedule: "broken", Failed: true},
		})},
		{"timeline", renderTimeline("primary", hour(-4), hour(-4+7*24), []slot{alice, bob, carol})},
		{"timeline_empty", renderTimeline("primary", hour(0), hour(7*24), nil)},
		{"mine", renderMine([]slot{alice, {Schedule: "secondary", Person: "U0ALICE", Slack: "U0ALICE", Start: hour(48), End: hour(72)}},
			[]string{"broken"}, t0)},
		{"mine_none", renderMine(nil, nil, t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", "schedule_"+tt.name+".golden"), []byte(tt.got+"\n"))
		})
	}
}

func TestRenderScheduleBlocksGolden(t *testing.T) {
	o1 := oncall.Override{ID: 7, Schedule: "primary", Person: "bob@example.com", Start: hour(24), End: hour(48),
		CreatedBy: oncall.SlackActor("U0ALICE"), Reason: "swap accepted in Slack"}
	o2 := oncall.Override{ID: 9, Schedule: "primary", Person: "Somebody Else", Start: hour(50), End: hour(52),
		CreatedBy: oncall.SlackActor("U0ADMIN"), Reason: "taken in Slack"}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	mine := []slot{
		{Schedule: "primary", Slack: "U0ALICE", Start: hour(-2), End: hour(22)},
		{Schedule: "primary", Slack: "U0ALICE", Start: hour(72), End: hour(96)},
	}
	_, overrides := renderOverrides([]overrideItem{{Override: o1, Slack: "U0BOB", CanCancel: true}, {Override: o2}}, []string{"secondary"})
	swap := swapModal(mine, berlin, []string{"primary", "secondary"}, t0, `{"r":"https://hooks.slack.com/x"}`)
	tests := []struct {
		name string
		v    any
	}{
		{"overrides", overrides},
		{"swap_request", swapRequestBlocks(swapRequest{Schedule: "primary", Start: hour(0).Unix(), End: hour(24).Unix(), From: "U0ALICE", To: "U0BOB"})},
		{"swap_modal", swap},
		{"override_modal", overrideModal([]string{"primary"}, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.MarshalIndent(tt.v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "schedule_"+tt.name+".golden.json"), append(got, '\n'))
		})
	}
	if text, blocks := renderOverrides(nil, nil); text != "There are no upcoming overrides." || blocks != nil {
		t.Errorf("no overrides: %q, %v", text, blocks)
	}
}

// The current shift is offered from now on, labelled in the viewer's time.
func TestSwapModalOffersTheRestOfTheCurrentShift(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := hour(0.5).Add(17 * time.Second)
	v := swapModal([]slot{{Schedule: "primary", Slack: "U0ALICE", Start: hour(-2), End: hour(22)}}, berlin, []string{"primary"}, now, "")
	b, _ := json.Marshal(v)
	for _, want := range []string{
		`"value":"` + itoa(hour(0.5).Unix()) + "|" + itoa(hour(22).Unix()) + `|primary"`,
		`"text":"primary: Mon 2 Mar 10:30 – Tue 3 Mar 08:00"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("modal %s lacks %s", b, want)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestCovers(t *testing.T) {
	a := func(start, end float64) slot { return slot{Slack: "U0A", Start: hour(start), End: hour(end)} }
	other := slot{Slack: "U0B", Start: hour(0), End: hour(100)}
	tests := []struct {
		name     string
		slots    []slot
		from, to float64
		want     bool
	}{
		{"inside one", []slot{a(0, 10)}, 2, 8, true},
		{"exactly", []slot{a(0, 10)}, 0, 10, true},
		{"back to back", []slot{a(5, 10), a(0, 5)}, 1, 9, true},
		{"overlapping", []slot{a(0, 6), a(4, 10)}, 1, 9, true},
		{"a hole", []slot{a(0, 4), a(5, 10)}, 1, 9, false},
		{"starts before", []slot{a(2, 10)}, 1, 9, false},
		{"ends after", []slot{a(0, 8)}, 1, 9, false},
		{"someone else", []slot{other}, 1, 9, false},
		{"none", nil, 1, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := covers(tt.slots, "U0A", hour(tt.from), hour(tt.to)); got != tt.want {
				t.Errorf("covers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCoalesceAndNowAndNext(t *testing.T) {
	s := func(who string, start, end float64) slot {
		return slot{Schedule: "p", Person: who, Slack: who, Start: hour(start), End: hour(end)}
	}
	got := coalesce([]slot{s("U0B", 10, 20), s("U0A", 0, 5), s("U0A", 5, 10), s("U0A", 20, 30)})
	want := []slot{s("U0A", 0, 10), s("U0B", 10, 20), s("U0A", 20, 30)}
	if !equalSlots(got, want) {
		t.Errorf("coalesce = %v, want %v", got, want)
	}
	now, next := nowAndNext([]slot{s("U0A", 0, 5)}, got, hour(3))
	if !equalSlots(now, []slot{s("U0A", 0, 10)}) || !equalSlots(next, []slot{s("U0B", 10, 20)}) {
		t.Errorf("nowAndNext = %v, %v", now, next)
	}
}

func equalSlots(a, b []slot) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Slack != b[i].Slack || !a[i].Start.Equal(b[i].Start) || !a[i].End.Equal(b[i].End) {
			return false
		}
	}
	return true
}

func TestParseRange(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     string
		from, to time.Time
		ok       bool
	}{
		{"2026-03-02T09:00 2026-03-02T18:00", time.Date(2026, 3, 2, 9, 0, 0, 0, tokyo), time.Date(2026, 3, 2, 18, 0, 0, 0, tokyo), true},
		{"2026-03-02 09:00 2026-03-03 09:30", time.Date(2026, 3, 2, 9, 0, 0, 0, tokyo), time.Date(2026, 3, 3, 9, 30, 0, 0, tokyo), true},
		{"2026-03-02T09:00:00Z 2026-03-03", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 0, 0, 0, 0, tokyo), true},
		{"2026-03-02T09:00", time.Time{}, time.Time{}, false},
		{"tomorrow 9am", time.Time{}, time.Time{}, false},
		{"2026-03-02T09:00 2026-03-02T10:00 2026-03-02T11:00", time.Time{}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			from, to, ok := parseRange(strings.Fields(tt.args), tokyo)
			if ok != tt.ok || !from.Equal(tt.from) || !to.Equal(tt.to) {
				t.Errorf("parseRange = %s, %s, %v; want %s, %s, %v", from, to, ok, tt.from, tt.to, tt.ok)
			}
		})
	}
}

func TestPeopleResolve(t *testing.T) {
	fake, err := fakeslack.New(fakeslack.Config{Users: []fakeslack.User{
		{ID: "U0ALICE", Email: "alice@example.com", TZ: "Europe/Berlin"},
		{ID: "U0BOB", Email: "bob@example.com"},
		{ID: "U0EVE", Email: "eve@example.org"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))
	now := t0
	p := newPeople(api, []UserRef{
		{Email: "alice@example.com", Name: "Alice Smith"},
		{Email: "bob@example.com"},
		{Slack: "U0CAROL", Name: "carol"},
		{Email: "nobody@example.com", Name: "Ghost"},
	}, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	ctx := t.Context()
	tests := []struct {
		person string
		want   string // "" for no match
	}{
		{"U0DAN123", "U0DAN123"},
		{"<@U0DAN123|dan>", "U0DAN123"},
		{"alice@example.com", "U0ALICE"},
		{"mailto:ALICE@example.com", "U0ALICE"},
		{" Alice Smith ", "U0ALICE"},
		{"@alice", "U0ALICE"}, // the part of her email before the @
		{"@bob", "U0BOB"},
		{"carol", "U0CAROL"},
		{"@carol", "U0CAROL"},
		{"eve@example.org", "U0EVE"}, // not in the config: Slack knows her
		{"Ghost", ""},                // in the config, unknown to Slack
		{"Mallory", ""},
		{"UWE", ""}, // a name in capitals, not an id
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.person, func(t *testing.T) {
			id, ok := p.slackID(ctx, tt.person)
			if id != tt.want || ok != (tt.want != "") {
				t.Errorf("slackID(%q) = %q, %v; want %q", tt.person, id, ok, tt.want)
			}
		})
	}
	lookups := fake.Calls("users.lookupByEmail")
	for range 3 {
		p.slackID(ctx, "alice@example.com")
		p.slackID(ctx, "Ghost")
	}
	if n := fake.Calls("users.lookupByEmail"); n != lookups {
		t.Errorf("cached answers asked Slack %d more times", n-lookups)
	}
	now = now.Add(peopleTTL + time.Second)
	p.slackID(ctx, "alice@example.com")
	if n := fake.Calls("users.lookupByEmail"); n != lookups+1 {
		t.Errorf("after the TTL: %d lookups, want %d", n, lookups+1)
	}

	// Back: how an override names a Slack user.
	for id, want := range map[string]string{"U0ALICE": "alice@example.com", "U0CAROL": "U0CAROL", "U0EVE": "U0EVE"} {
		if got := p.personFor(ctx, id); got != want {
			t.Errorf("personFor(%s) = %q, want %q", id, got, want)
		}
	}
	if loc := p.location(ctx, "U0ALICE"); loc.String() != "Europe/Berlin" {
		t.Errorf("alice's time zone = %s", loc)
	}
	if loc := p.location(ctx, "U0NOBODY1"); loc != time.UTC {
		t.Errorf("an unknown user's time zone = %s, want UTC", loc)
	}
	if !bytes.Contains([]byte(personText(slot{Person: "Bob <B>"})), []byte("Bob &lt;B&gt; :warning:")) {
		t.Errorf("unmatched person text = %q", personText(slot{Person: "Bob <B>"}))
	}
}
