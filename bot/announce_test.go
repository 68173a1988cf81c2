package bot_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/golden"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/storage"
)

// day0 is the Monday the announcement tests start on.
var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// at is day0 plus a number of days, hours and minutes.
func at(days, hours, minutes int) time.Time {
	return day0.AddDate(0, 0, days).Add(time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute)
}

func onCall(person string, start, end time.Time) oncall.Shift {
	return oncall.Shift{Person: person, Start: start, End: end, Source: "calendar"}
}

// twelveHours is a rotation of alice (09:00-21:00 UTC) and bob (21:00-09:00)
// from day -2 to day 20: nobody is ever missing.
func twelveHours() []oncall.Shift {
	var shifts []oncall.Shift
	for d := -2; d < 20; d++ {
		shifts = append(shifts, onCall("alice@example.com", at(d, 9, 0), at(d, 21, 0)), onCall("bob@example.com", at(d, 21, 0), at(d+1, 9, 0)))
	}
	return shifts
}

// fixedShifts is a schedule source over shifts the test sets.
type fixedShifts struct {
	mu     sync.Mutex
	shifts map[string][]oncall.Shift
}

func (f *fixedShifts) set(schedule string, shifts ...oncall.Shift) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shifts == nil {
		f.shifts = map[string][]oncall.Shift{}
	}
	f.shifts[schedule] = shifts
}

func (f *fixedShifts) Schedules() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for name := range f.shifts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (f *fixedShifts) Shifts(_ context.Context, schedule string, from, to time.Time) ([]oncall.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	all, ok := f.shifts[schedule]
	if !ok {
		return nil, fmt.Errorf("schedule %q: %w", schedule, oncall.ErrNotFound)
	}
	var out []oncall.Shift
	for _, s := range all {
		if s.Start.Before(to) && s.End.After(from) {
			s.Schedule = schedule
			out = append(out, s)
		}
	}
	return out, nil
}

// slackIDs are the people with a Slack user; others have none.
var slackIDs = map[string]string{
	"alice@example.com": "U0ALICE",
	"bob@example.com":   "U0BOB",
	"carol@example.com": "U0CAROL",
}

func lookupSlackID(_ context.Context, person string) (string, bool, error) {
	id, ok := slackIDs[person]
	return id, ok, nil
}

const (
	oncallChannel = "C0ONCALL"
	oncallGroup   = "S0ONCALL"
)

// announceEnv is a fake Slack, a fresh database and a schedule source that
// announcers (replicas, or one process before and after a restart) share.
type announceEnv struct {
	t       *testing.T
	fake    *fakeslack.Server
	db      *storage.DB
	src     *fixedShifts
	targets map[string]bot.AnnounceTarget
	// lookup is the announcers' SlackUser; nil for lookupSlackID.
	lookup bot.SlackUserFunc
}

func newAnnounceEnv(t *testing.T, targets map[string]bot.AnnounceTarget) *announceEnv {
	t.Helper()
	fake, err := fakeslack.New(fakeslack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	db, err := storage.Open(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &announceEnv{t: t, fake: fake, db: db, src: &fixedShifts{}, targets: targets}
}

// announcer starts another announcer: a replica, or the process after a
// restart. Its clock is never read: the tests tick it.
func (e *announceEnv) announcer() *bot.Announcer {
	e.t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(io.Writer(testWriter{e.t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	lookup := e.lookup
	if lookup == nil {
		lookup = lookupSlackID
	}
	a, err := bot.NewAnnouncer(bot.AnnouncerConfig{
		Slack:     bot.Config{BotToken: e.fake.BotToken(), APIURL: e.fake.APIURL(), Logger: logger},
		Schedules: e.src,
		Targets:   e.targets,
		Store:     e.db,
		SlackUser: lookup,
		Now:       func() time.Time { panic("the clock of a ticked announcer is read") },
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// tick makes a's announcements due at now and fails the test on an error.
func (e *announceEnv) tick(a *bot.Announcer, now time.Time) time.Time {
	e.t.Helper()
	next, err := bot.Tick(e.t.Context(), a, now)
	if err != nil {
		e.t.Fatalf("tick at %s: %v", now.Format(time.RFC3339), err)
	}
	return next
}

// texts returns the texts of the channel's messages with the prefix.
func (e *announceEnv) texts(channel, prefix string) []string {
	var out []string
	for _, m := range e.fake.State().TopLevel(channel) {
		if strings.HasPrefix(m.Text, prefix) {
			out = append(out, m.Text)
		}
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func date(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

const nowOnCall = "Now on call for *primary*"

func TestAnnounceHandoffOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Channel: oncallChannel}})
	e.src.set("primary", twelveHours()...)
	replicas := []*bot.Announcer{e.announcer(), e.announcer()}

	for _, a := range replicas {
		if next := e.tick(a, at(0, 8, 59)); !next.Equal(at(0, 9, 0)) {
			t.Errorf("at 08:59 the next due moment is %s, want the 09:00 handoff", next)
		}
	}
	if got := e.texts(oncallChannel, ""); len(got) != 0 {
		t.Fatalf("before the handoff the channel got %q", got)
	}

	var wg sync.WaitGroup
	for _, a := range replicas {
		wg.Go(func() {
			if _, err := bot.Tick(t.Context(), a, at(0, 9, 0)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, now := range []time.Time{at(0, 9, 1), at(0, 9, 5)} {
		for _, a := range replicas {
			e.tick(a, now)
		}
	}
	want := []string{nowOnCall + ": <@U0ALICE> (until " + date(at(0, 21, 0)) + ")"}
	if got := e.texts(oncallChannel, ""); !slices.Equal(got, want) {
		t.Errorf("channel got %q\nwant %q", got, want)
	}
}

func TestAnnounceReminderAnHourBefore(t *testing.T) {
	t.Parallel()
	e := newAnnounceEnv(t, nil) // no channel: reminders only
	e.src.set("primary",
		onCall("alice@example.com", at(0, 9, 0), at(0, 21, 0)),
		onCall("bob@example.com", at(0, 21, 0), at(1, 9, 0)),
		onCall("bob@example.com", at(1, 9, 0), at(1, 12, 0)), // back to back: one stint
		onCall("Dave", at(1, 12, 0), at(1, 20, 0)),           // no Slack user
	)
	a, restarted := e.announcer(), e.announcer()
	bobDM := fakeslack.DMChannel("U0BOB")

	if next := e.tick(a, at(0, 19, 59)); !next.Equal(at(0, 20, 0)) {
		t.Errorf("at 19:59 the next due moment is %s, want 20:00", next)
	}
	if got := e.texts(bobDM, ""); len(got) != 0 {
		t.Fatalf("DM before the hour: %q", got)
	}
	e.tick(a, at(0, 20, 0))
	e.tick(restarted, at(0, 20, 30))
	e.tick(a, at(1, 8, 0)) // an hour before bob's second, back-to-back shift
	e.tick(a, at(1, 11, 0))

	want := []string{":pager: You are on call for *primary* from " + date(at(0, 21, 0)) + " to " + date(at(1, 12, 0)) + "."}
	if got := e.texts(bobDM, ""); !slices.Equal(got, want) {
		t.Errorf("bob's DMs: %q\nwant %q", got, want)
	}
	if n := e.fake.Calls("conversations.open"); n != 1 {
		t.Errorf("conversations.open called %d times, want 1", n)
	}
	if got := len(e.fake.Messages()); got != 1 {
		t.Errorf("%d messages in all, want bob's reminder only", got)
	}
}

func TestAnnounceUsergroupFollowsWhoIsOnCall(t *testing.T) {
	t.Parallel()
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Usergroup: oncallGroup}})
	e.src.set("primary",
		onCall("bob@example.com", at(-1, 21, 0), at(0, 9, 0)),
		onCall("alice@example.com", at(0, 9, 0), at(0, 21, 0)),
		onCall("carol@example.com", at(0, 9, 0), at(0, 10, 0)), // two on call at once
		onCall("Dave", at(0, 9, 0), at(0, 10, 0)),              // no Slack user: left out
		// nobody from 21:00
	)
	a := e.announcer()

	steps := []struct {
		name    string
		now     time.Time
		edit    []string // members set by hand before the tick
		want    []string
		updates int // usergroups.users.update calls so far
		lists   int // usergroups.users.list calls so far
	}{
		{"before the handoff", at(0, 8, 0), nil, []string{"U0BOB"}, 1, 1},
		{"unchanged: Slack not asked", at(0, 8, 5), nil, []string{"U0BOB"}, 1, 1},
		{"handoff to two", at(0, 9, 0), nil, []string{"U0ALICE", "U0CAROL"}, 2, 2},
		{"one leaves", at(0, 10, 0), nil, []string{"U0ALICE"}, 3, 3},
		{"edited by hand, not rechecked yet", at(0, 10, 5), []string{"U0MALLORY"}, []string{"U0MALLORY"}, 3, 3},
		{"edited by hand, rechecked", at(0, 10, 10), nil, []string{"U0ALICE"}, 4, 4},
		{"rechecked, in order", at(0, 10, 20), nil, []string{"U0ALICE"}, 4, 5},
		{"nobody on call: left as it is", at(0, 21, 0), nil, []string{"U0ALICE"}, 4, 5},
	}
	for _, st := range steps {
		if st.edit != nil {
			e.fake.SetUsergroupUsers(oncallGroup, st.edit...)
		}
		e.tick(a, st.now)
		if got := e.fake.UsergroupUsers(oncallGroup); !slices.Equal(got, st.want) {
			t.Errorf("%s: user group %v, want %v", st.name, got, st.want)
		}
		if got := e.fake.Calls("usergroups.users.update"); got != st.updates {
			t.Errorf("%s: %d updates so far, want %d", st.name, got, st.updates)
		}
		if got := e.fake.Calls("usergroups.users.list"); got != st.lists {
			t.Errorf("%s: %d lists so far, want %d", st.name, got, st.lists)
		}
	}
}

func TestAnnounceGapsOncePerDay(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{
		"primary":   {Channel: oncallChannel, Location: berlin},
		"secondary": {Channel: "C0SECONDARY", Location: berlin},
	})
	e.src.set("primary",
		onCall("alice@example.com", at(-1, 0, 0), at(3, 2, 0)),
		onCall("bob@example.com", at(3, 6, 0), at(30, 0, 0)),
	)
	e.src.set("secondary", twelveHours()...)
	a := e.announcer()
	const warning = ":warning: Nobody is on call for *primary* at these times"

	steps := []struct {
		name string
		now  time.Time
		want int // warnings so far
	}{
		{"08:59 in Berlin", at(0, 7, 59), 0},
		{"09:00 in Berlin", at(0, 8, 0), 1},
		{"later that day", at(0, 12, 0), 1},
		{"late in the evening", at(0, 22, 59), 1},
		{"next day, 08:59 in Berlin", at(1, 7, 59), 1},
		{"next day, 09:00 in Berlin", at(1, 8, 0), 2},
		{"next day, later", at(1, 9, 0), 2},
		{"the day after the gap", at(4, 8, 0), 2},
	}
	for _, st := range steps {
		e.tick(a, st.now)
		if got := len(e.texts(oncallChannel, warning)); got != st.want {
			t.Errorf("%s: %d warnings so far, want %d", st.name, got, st.want)
		}
	}
	want := warning + " in the next 14 days:\n• " + date(at(3, 2, 0)) + " – " + date(at(3, 6, 0))
	if got := e.texts(oncallChannel, warning); len(got) == 0 || got[0] != want {
		t.Errorf("warning %q\nwant %q", got, want)
	}
	if got := e.texts("C0SECONDARY", ":warning:"); len(got) != 0 {
		t.Errorf("schedule without gaps got %q", got)
	}
}

func TestAnnounceSkipsStaleAfterRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		restart time.Duration // after the 09:00 handoff
		handoff bool          // the handoff is still announced
		carolDM bool          // carol, on call from 09:30, still gets her reminder
		group   []string
	}{
		{"at the handoff", 0, true, true, []string{"U0ALICE"}},
		{"5m late", 5 * time.Minute, true, true, []string{"U0ALICE"}},
		{"5m1s late", 5*time.Minute + time.Second, false, true, []string{"U0ALICE"}},
		{"40m late", 40 * time.Minute, false, false, []string{"U0ALICE", "U0CAROL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Channel: oncallChannel, Usergroup: oncallGroup}})
			e.src.set("primary",
				onCall("bob@example.com", at(-1, 21, 0), at(0, 9, 0)),
				onCall("alice@example.com", at(0, 9, 0), at(20, 0, 0)),
				onCall("carol@example.com", at(0, 9, 30), at(0, 12, 0)),
			)
			// The first tick of a process that was down over the handoff.
			e.tick(e.announcer(), at(0, 9, 0).Add(tt.restart))

			if got := len(e.texts(oncallChannel, nowOnCall+": <@U0ALICE> (until")); got != b2i(tt.handoff) {
				t.Errorf("%d handoff announcements, want %d", got, b2i(tt.handoff))
			}
			if got := len(e.texts(oncallChannel, nowOnCall)); got > 1 {
				t.Errorf("stale announcements posted: %q", e.texts(oncallChannel, ""))
			}
			if got := len(e.texts(fakeslack.DMChannel("U0CAROL"), "")); got != b2i(tt.carolDM) {
				t.Errorf("%d reminders to carol, want %d", got, b2i(tt.carolDM))
			}
			if got := len(e.texts(fakeslack.DMChannel("U0ALICE"), "")); got != 0 {
				t.Errorf("alice got a reminder for a shift under way")
			}
			if got := e.fake.UsergroupUsers(oncallGroup); !slices.Equal(got, tt.group) {
				t.Errorf("user group %v, want %v", got, tt.group)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAnnounceRetriesOnlyWhatSlackRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fail  func(*fakeslack.Server)
		posts int // after the failed tick and one more
	}{
		// Slack answered: the message is not there; the next tick posts it.
		{"refused", func(f *fakeslack.Server) { f.FailNextError("chat.postMessage", 1, "not_in_channel") }, 1},
		{"rate limited", func(f *fakeslack.Server) { f.FailNext("chat.postMessage", 1, http.StatusTooManyRequests, time.Second) }, 1},
		// Slack may have it: never posted twice, so not again.
		{"server error", func(f *fakeslack.Server) { f.FailNext("chat.postMessage", 1, http.StatusInternalServerError, 0) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Channel: oncallChannel}})
			e.src.set("primary", twelveHours()...)
			a := e.announcer()
			tt.fail(e.fake)
			if _, err := bot.Tick(t.Context(), a, at(0, 9, 0)); err == nil {
				t.Error("the failed post was not reported")
			}
			e.tick(a, at(0, 9, 1))
			e.tick(a, at(0, 9, 2))
			if got := len(e.texts(oncallChannel, nowOnCall)); got != tt.posts {
				t.Errorf("%d handoff announcements, want %d", got, tt.posts)
			}
		})
	}
}

// TestAnnounceFollowsNextDue drives an announcer over two days from one
// due moment to the next, as Run does, through handoffs, an overlap, a
// gap, people without a Slack user and an override that appears on the
// way; every announcement is in the golden file.
func TestAnnounceFollowsNextDue(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{
		"primary": {Channel: oncallChannel, Usergroup: oncallGroup, Location: berlin},
		// payments has no channel: its people get their reminders only.
	})
	primary := []oncall.Shift{
		onCall("bob@example.com", at(-1, 21, 0), at(0, 9, 0)),
		onCall("alice@example.com", at(0, 9, 0), at(0, 21, 0)),
		onCall("carol@example.com", at(0, 12, 0), at(0, 14, 0)),      // overlaps alice
		onCall("Dave <dave@example.com>", at(0, 21, 0), at(1, 3, 0)), // no Slack user
		// nobody from 03:00 to 05:00
		onCall("bob@example.com", at(1, 5, 0), at(20, 0, 0)),
	}
	e.src.set("primary", primary...)
	e.src.set("payments",
		onCall("carol@example.com", at(-1, 0, 0), at(1, 0, 0)),
		onCall("alice@example.com", at(1, 0, 0), at(20, 0, 0)),
	)
	a := e.announcer()

	var log strings.Builder
	seen, overridden := 0, false
	now, end := at(0, 6, 0), at(2, 0, 0)
	for steps := 0; !now.After(end); steps++ {
		if steps > 100 {
			t.Fatalf("more than 100 wakes before %s", end)
		}
		if !overridden && !now.Before(at(0, 22, 0)) {
			// An override made in Slack in the evening: carol takes bob's
			// next morning (the source applies it, as schedule.Merge does).
			overridden = true
			changed := slices.Clone(primary)
			changed[len(changed)-1].Start = at(1, 9, 0)
			e.src.set("primary", append(changed, oncall.Shift{
				Person: "carol@example.com", Start: at(1, 5, 0), End: at(1, 9, 0), Source: "override"})...)
		}
		next := e.tick(a, now)
		stamp := now.UTC().Format(time.RFC3339)
		msgs := e.fake.Messages()
		for _, m := range msgs[seen:] {
			fmt.Fprintf(&log, "%s %s: %s\n", stamp, m.Channel, m.Text)
		}
		seen = len(msgs)
		fmt.Fprintf(&log, "%s usergroup: %s\n", stamp, strings.Join(e.fake.UsergroupUsers(oncallGroup), ","))
		if !next.After(now) {
			t.Fatalf("at %s the next due moment is %s", now, next)
		}
		now = next
	}
	golden.Check(t, "testdata/announce_two_days.golden", []byte(log.String()))
}

func TestAnnouncerRun(t *testing.T) {
	t.Parallel()
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Channel: oncallChannel}})
	e.src.set("primary", twelveHours()...)
	a, err := bot.NewAnnouncer(bot.AnnouncerConfig{
		Slack:     bot.Config{BotToken: e.fake.BotToken(), APIURL: e.fake.APIURL(), Logger: slog.New(slog.DiscardHandler)},
		Schedules: e.src,
		Targets:   e.targets,
		Store:     e.db,
		SlackUser: lookupSlackID,
		Now:       func() time.Time { return at(0, 9, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	wait, stop := context.WithTimeout(t.Context(), 30*time.Second)
	defer stop()
	_, err = e.fake.WaitFor(wait, func(st fakeslack.State) bool { return len(st.TopLevel(oncallChannel)) > 0 })
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if got := e.texts(oncallChannel, nowOnCall+": <@U0ALICE>"); len(got) != 1 {
		t.Errorf("Run posted %q", e.texts(oncallChannel, ""))
	}
}

func TestNewAnnouncerRequires(t *testing.T) {
	t.Parallel()
	src := &fixedShifts{}
	full := bot.AnnouncerConfig{Slack: bot.Config{BotToken: "xoxb-x"}, Schedules: src, Store: &storage.DB{}, SlackUser: lookupSlackID}
	tests := []struct {
		name   string
		change func(*bot.AnnouncerConfig)
	}{
		{"bot token", func(c *bot.AnnouncerConfig) { c.Slack.BotToken = "" }},
		{"schedules", func(c *bot.AnnouncerConfig) { c.Schedules = nil }},
		{"store", func(c *bot.AnnouncerConfig) { c.Store = nil }},
		{"Slack users", func(c *bot.AnnouncerConfig) { c.SlackUser = nil }},
	}
	if _, err := bot.NewAnnouncer(full); err != nil {
		t.Fatalf("complete config: %v", err)
	}
	for _, tt := range tests {
		cfg := full
		tt.change(&cfg)
		if _, err := bot.NewAnnouncer(cfg); err == nil {
			t.Errorf("without %s: no error", tt.name)
		}
	}
}
