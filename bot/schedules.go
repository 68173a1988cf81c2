package bot

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
)

// Schedules says who is on call when (schedule.Service).
type Schedules interface {
	Schedules() []string
	OnCall(ctx context.Context, schedule string, at time.Time) ([]oncall.Shift, error)
	Shifts(ctx context.Context, schedule string, from, to time.Time) ([]oncall.Shift, error)
	// OverridesChanged drops what is cached of the schedule after an
	// override was stored or cancelled.
	OverridesChanged(schedule string)
}

// Overrides keeps the overrides made in Slack (storage.DB).
type Overrides interface {
	AddOverride(ctx context.Context, o oncall.Override) (oncall.Override, error)
	CancelOverride(ctx context.Context, id int64, by oncall.Actor) error
	Overrides(ctx context.Context, schedule string, from, to time.Time) ([]oncall.Override, error)
}

// How far the schedule commands look ahead.
const (
	whoHorizon      = 14 * 24 * time.Hour // the next shift of /oncall who
	timelineSpan    = 7 * 24 * time.Hour  // /oncall schedule
	myShiftsHorizon = 28 * 24 * time.Hour // /oncall me and the swap dialog
	overridesSpan   = 90 * 24 * time.Hour // /oncall overrides
	maxOverrideSpan = 90 * 24 * time.Hour // the longest override one may make
	// validateTimeout leaves room in Slack's 3 seconds for the answer to a
	// modal's submission.
	validateTimeout = 2500 * time.Millisecond
)

// scheduling is the bot's part for schedules: the Slack side of who is on
// call, and shift swaps and overrides.
type scheduling struct {
	schedules Schedules // nil: none configured
	overrides Overrides // nil: no swaps or overrides
	people    *people
	admins    map[string]bool
	channels  map[string]string // schedule -> channel for notes
	feeds     Feeds             // nil: no feed links

	// accepting serializes the accepts of one swap request in this
	// process, so that a double click stores one override.
	accepting keyedMutex
}

func newScheduling(cfg Config, api slackUsers, now func() time.Time, log *slog.Logger) scheduling {
	admins := map[string]bool{}
	for _, id := range cfg.Admins {
		admins[strings.TrimSpace(id)] = true
	}
	return scheduling{
		schedules: cfg.Schedules,
		overrides: cfg.Overrides,
		people:    newPeople(api, cfg.Users, now, log),
		admins:    admins,
		channels:  cfg.ScheduleChannels,
		feeds:     cfg.Feeds,
	}
}

// keyedMutex is a mutex per key.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// slashCommand answers a slash command. The reply (nil for none) rides on
// the ack; work, when not nil, is done after the ack and answers through
// the command's response_url.
func (b *Bot) slashCommand(cmd slack.SlashCommand) (reply any, work func(context.Context)) {
	sub, args := splitCommand(cmd.Text)
	var do func(ctx context.Context, cmd slack.SlashCommand, args []string)
	switch sub {
	case "who":
		do = b.cmdWho
	case "schedule", "schedules":
		do = b.cmdSchedule
	case "me":
		do = b.cmdMe
	case "swap":
		do = b.cmdSwap
	case "override":
		do = b.cmdOverride
	case "overrides":
		do = b.cmdOverrides
	case "escalate":
		return b.escalateCommand(cmd)
	case "page":
		return b.pageCommand(cmd)
	case "maintenance":
		return b.maintenanceCommand(cmd)
	default:
		return slashReply(cmd), nil
	}
	if b.sched.schedules == nil {
		return ephemeralReply("No schedules are configured. Add `schedules:` to the oncall config."), nil
	}
	return nil, func(ctx context.Context) { do(ctx, cmd, args) }
}

func splitCommand(text string) (string, []string) {
	f := strings.Fields(text)
	if len(f) == 0 {
		return "", nil
	}
	return strings.ToLower(f[0]), f[1:]
}

func ephemeralReply(text string) map[string]any {
	return map[string]any{"response_type": "ephemeral", "text": text}
}

// respond answers a command or a click through its response_url, to the
// user alone.
func (b *Bot) respond(ctx context.Context, responseURL, text string, blocks ...slack.Block) {
	if responseURL == "" {
		return
	}
	msg := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text}
	if len(blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: blocks}
	}
	if err := slack.PostWebhookContext(ctx, responseURL, msg); err != nil {
		b.log.Warn("answer through the response_url", "err", err)
	}
}

// scheduleNames returns the schedules a command is about: the named one,
// or all of them. The text is the answer when the name is unknown.
func (b *Bot) scheduleNames(args []string) ([]string, string) {
	all := b.sched.schedules.Schedules()
	if len(all) == 0 {
		return nil, "No schedules are configured. Add `schedules:` to the oncall config."
	}
	if len(args) == 0 {
		return all, ""
	}
	name := strings.Join(args, " ")
	for _, s := range all {
		if strings.EqualFold(s, name) {
			return []string{s}, ""
		}
	}
	return nil, unknownSchedule(name, all)
}

func unknownSchedule(name string, all []string) string {
	quoted := make([]string, len(all))
	for i, s := range all {
		quoted[i] = "`" + codeSafe(s) + "`"
	}
	return fmt.Sprintf("Unknown schedule `%s`. Schedules: %s.", codeSafe(truncate(name, 50)), strings.Join(quoted, ", "))
}

// slots resolves the people of shifts to Slack users, and joins the
// back-to-back shifts of one person (split by layers or sources).
func (b *Bot) slots(ctx context.Context, shifts []oncall.Shift) []slot {
	out := make([]slot, 0, len(shifts))
	for _, sh := range shifts {
		id, _ := b.sched.people.slackID(ctx, sh.Person)
		out = append(out, slot{Schedule: sh.Schedule, Person: sh.Person, Slack: id, Start: sh.Start, End: sh.End})
	}
	return coalesce(out)
}

// coalesce joins the slots of one person in one schedule that touch or
// overlap.
func coalesce(in []slot) []slot {
	s := slices.Clone(in)
	slices.SortStableFunc(s, func(a, b slot) int {
		return cmp.Or(strings.Compare(a.Schedule, b.Schedule), strings.Compare(a.key(), b.key()), a.Start.Compare(b.Start))
	})
	var out []slot
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].Schedule == x.Schedule && out[n-1].key() == x.key() && !x.Start.After(out[n-1].End) {
			if x.End.After(out[n-1].End) {
				out[n-1].End = x.End
			}
			continue
		}
		out = append(out, x)
	}
	sortSlots(out)
	return out
}

func sortSlots(s []slot) {
	slices.SortStableFunc(s, func(a, b slot) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Schedule, b.Schedule), strings.Compare(a.key(), b.key()))
	})
}

func (b *Bot) cmdWho(ctx context.Context, cmd slack.SlashCommand, args []string) {
	names, problem := b.scheduleNames(args)
	if problem != "" {
		b.respond(ctx, cmd.ResponseURL, problem)
		return
	}
	now := b.now()
	var entries []whoEntry
	for _, name := range names {
		e := whoEntry{Schedule: name}
		current, err := b.sched.schedules.OnCall(ctx, name, now)
		var ahead []oncall.Shift
		if err == nil {
			ahead, err = b.sched.schedules.Shifts(ctx, name, now, now.Add(whoHorizon))
		}
		if err != nil {
			b.log.Error("who is on call", "schedule", name, "err", err)
			e.Failed = true
			entries = append(entries, e)
			continue
		}
		e.Now, e.Next = nowAndNext(b.slots(ctx, current), b.slots(ctx, ahead), now)
		entries = append(entries, e)
	}
	b.respond(ctx, cmd.ResponseURL, renderWho(entries)+b.sourceProblems(names))
}

// nowAndNext returns who is on call now, until when (the end of their
// shifts ahead that follow on), and the people of the next shifts to start.
func nowAndNext(current, ahead []slot, now time.Time) (nowSlots, next []slot) {
	for _, c := range current {
		for _, a := range ahead {
			if a.key() == c.key() && !a.Start.After(now) && a.End.After(c.End) {
				c.End = a.End
			}
		}
		nowSlots = append(nowSlots, c)
	}
	var first time.Time
	for _, a := range ahead {
		if !a.Start.After(now) {
			continue
		}
		if first.IsZero() || a.Start.Before(first) {
			first = a.Start
		}
	}
	for _, a := range ahead {
		if !first.IsZero() && a.Start.Equal(first) {
			next = append(next, a)
		}
	}
	return nowSlots, next
}

func (b *Bot) cmdSchedule(ctx context.Context, cmd slack.SlashCommand, args []string) {
	names, problem := b.scheduleNames(args)
	if problem != "" {
		b.respond(ctx, cmd.ResponseURL, problem)
		return
	}
	from := b.now()
	to := from.Add(timelineSpan)
	var parts []string
	for _, name := range names {
		shifts, err := b.sched.schedules.Shifts(ctx, name, from, to)
		if err != nil {
			b.log.Error("shifts of a schedule", "schedule", name, "err", err)
			parts = append(parts, fmt.Sprintf("*%s*\n:x: Could not read the schedule because of an internal error.", escape(name)))
			continue
		}
		parts = append(parts, renderTimeline(name, from, to, b.slots(ctx, shifts)))
		if b.sched.feeds != nil {
			parts = append(parts, fmt.Sprintf(":calendar: Subscribe to *%s* in your calendar: %s", escape(name), b.sched.feeds.ScheduleFeed(name)))
		}
	}
	b.respond(ctx, cmd.ResponseURL, truncate(strings.Join(parts, "\n\n")+b.sourceProblems(names), maxMessageText))
}

// sourceProblems warns that the answer may be out of date when a
// schedule's calendar cannot be refreshed, if the schedules can tell.
func (b *Bot) sourceProblems(names []string) string {
	p, ok := b.sched.schedules.(interface{ Problem(schedule string) string })
	if !ok {
		return ""
	}
	var out strings.Builder
	for _, name := range names {
		if problem := p.Problem(name); problem != "" {
			fmt.Fprintf(&out, "\n:warning: *%s*: %s", escape(name), escape(problem))
		}
	}
	return out.String()
}

// maxMessageText is Slack's limit on a message's text.
const maxMessageText = 40000

func (b *Bot) cmdMe(ctx context.Context, cmd slack.SlashCommand, _ []string) {
	mine, failed := b.shiftsOf(ctx, cmd.UserID, b.now(), myShiftsHorizon)
	text := renderMine(mine, failed, b.now())
	if b.sched.feeds != nil {
		if url, ok := b.sched.feeds.PersonFeed(ctx, cmd.UserID); ok {
			text += "\n:calendar: Your shifts in your calendar: " + url
		}
	}
	b.respond(ctx, cmd.ResponseURL, text)
}

// shiftsOf returns the user's shifts across the schedules over the next
// span, and the schedules that could not be read.
func (b *Bot) shiftsOf(ctx context.Context, user string, from time.Time, span time.Duration) (mine []slot, failed []string) {
	for _, name := range b.sched.schedules.Schedules() {
		shifts, err := b.sched.schedules.Shifts(ctx, name, from, from.Add(span))
		if err != nil {
			b.log.Error("shifts of a schedule", "schedule", name, "err", err)
			failed = append(failed, name)
			continue
		}
		for _, s := range b.slots(ctx, shifts) {
			if s.Slack == user {
				mine = append(mine, s)
			}
		}
	}
	sortSlots(mine)
	return mine, failed
}

// covers says whether the user is on call for all of [from, to) in the
// slots.
// alsoOnCall returns the first person other than the given users who is on
// call at some point of [from, to): an override replaces everyone on call,
// so a swap must not silently take them off.
func alsoOnCall(slots []slot, from, to time.Time, users ...string) (slot, bool) {
	for _, s := range slots {
		if s.Start.Before(to) && s.End.After(from) && !slices.Contains(users, s.Slack) {
			return s, true
		}
	}
	return slot{}, false
}

func covers(slots []slot, user string, from, to time.Time) bool {
	var mine []slot
	for _, s := range slots {
		if s.Slack == user {
			mine = append(mine, s)
		}
	}
	slices.SortFunc(mine, func(a, b slot) int { return a.Start.Compare(b.Start) })
	at := from
	for _, s := range mine {
		if s.Start.After(at) {
			break
		}
		if s.End.After(at) {
			at = s.End
		}
		if !at.Before(to) {
			return true
		}
	}
	return !at.Before(to)
}

// isAdmin says whether the Slack user may give away and cancel anyone's
// shifts.
// isAdmin says whether the Slack user is an admin: named in Admins by
// Slack id, or by an email or name that resolves to them.
func (b *Bot) isAdmin(ctx context.Context, user string) bool {
	if b.sched.admins[user] {
		return true
	}
	for admin := range b.sched.admins {
		if id, ok := b.sched.people.slackID(ctx, admin); ok && id == user {
			return true
		}
	}
	return false
}

// postNote posts a note about a schedule to its channel, if it has one.
func (b *Bot) postNote(ctx context.Context, schedule, text string) {
	channel := b.sched.channels[schedule]
	if channel == "" {
		return
	}
	if _, _, err := b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false)); err != nil {
		b.log.Warn("post a schedule note", "schedule", schedule, "channel", channel, "err", err)
	}
}

// dm sends a direct message to a Slack user and returns where it went.
func (b *Bot) dm(ctx context.Context, user, text string, blocks ...slack.Block) (channel, ts string, err error) {
	ch, _, _, err := b.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", "", fmt.Errorf("open a DM with %s: %w", user, err)
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	channel, ts, err = b.api.PostMessageContext(ctx, ch.ID, opts...)
	if err != nil {
		return "", "", fmt.Errorf("send a DM to %s: %w", user, err)
	}
	return channel, ts, nil
}

// SetFeeds sets the calendar feed links shown by /oncall schedule and
// /oncall me. Call it before Run: the links need the bot's own user lookup.
func (b *Bot) SetFeeds(f Feeds) { b.sched.feeds = f }
