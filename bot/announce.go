package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// The kinds of announcement, the Kind of their storage.Announcement.
const (
	kindHandoff  = "handoff"  // "now on call" in the schedule's channel
	kindReminder = "reminder" // a DM to the incoming person
	kindGaps     = "gaps"     // the daily warning about gaps
)

const (
	// announceGrace is how late a handoff may still be announced: after a
	// restart, older ones are skipped rather than posted late.
	announceGrace = 5 * time.Minute
	// reminderLead is how long before a shift its person gets a DM.
	reminderLead = time.Hour
	// gapHorizon is how far ahead the daily warning looks for gaps.
	gapHorizon = 14 * 24 * time.Hour
	// gapWarnAt is the local time of day from which the daily gap warning
	// is due, in the schedule's time zone.
	gapWarnAt = 9 * time.Hour
	// maxGapsListed bounds the gaps one warning lists.
	maxGapsListed = 10
	// maxAnnounceWait bounds the Announcer's sleep, so that changes of the
	// schedules (overrides, calendar refreshes) are seen within it.
	maxAnnounceWait = time.Minute
	// usergroupRecheck is how often a user group already in the wanted state
	// is read again from Slack, to undo changes made by hand.
	usergroupRecheck = 10 * time.Minute
	// announcementsKept is how long claims are kept before they are pruned.
	announcementsKept = 30 * 24 * time.Hour
)

// AnnounceSchedules is where the Announcer reads who is on call
// (schedule.Service).
type AnnounceSchedules interface {
	Schedules() []string
	// Shifts returns the shifts overlapping [from, to), overrides applied.
	Shifts(ctx context.Context, schedule string, from, to time.Time) ([]oncall.Shift, error)
}

// AnnounceTarget is where a schedule's announcements go.
type AnnounceTarget struct {
	// Channel gets "now on call" at each handoff and the daily gap
	// warning; "" for neither.
	Channel string
	// Usergroup is a Slack user group id (S...) kept equal to who is on
	// call; "" for none.
	Usergroup string
	// Location is the schedule's time zone: the daily gap warning is due
	// from 09:00 there. Nil means UTC.
	Location *time.Location
}

// AnnouncementStore records the announcements made, so that each is made
// once across restarts and replicas (storage.DB).
type AnnouncementStore interface {
	ClaimAnnouncement(ctx context.Context, a storage.Announcement) (bool, error)
	ReleaseAnnouncement(ctx context.Context, a storage.Announcement) error
	PruneAnnouncements(ctx context.Context, before time.Time) (int64, error)
}

// SlackUserFunc finds the Slack user id of a person as a schedule names
// them (email, Slack id, name): false when there is none, an error when
// Slack could not be asked now (the answer may be known on the next try).
// (*Bot).LookupSlackUser is one.
type SlackUserFunc func(ctx context.Context, person string) (slackID string, ok bool, err error)

// AnnouncerConfig is what an Announcer needs.
type AnnouncerConfig struct {
	// Slack is how to reach Slack: BotToken, APIURL and Logger are used.
	Slack     Config
	Schedules AnnounceSchedules
	// Targets holds the channel and user group of each schedule by name.
	// Schedules without one still DM their incoming people.
	Targets   map[string]AnnounceTarget
	Store     AnnouncementStore
	SlackUser SlackUserFunc
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Announcer announces the on-call schedules in Slack, from the expanded
// shifts: at each change of who is on call it posts "now on call" to the
// schedule's channel and sets its user group; an hour before a shift it
// DMs the incoming person; once a day it warns about gaps in the next 14
// days.
//
// Each announcement is claimed in the database before it is sent, so it is
// sent at most once whatever the number of replicas; one that Slack
// certainly refused is released and tried again while it is due.
type Announcer struct {
	api       *slack.Client
	schedules AnnounceSchedules
	targets   map[string]AnnounceTarget
	store     AnnouncementStore
	slackUser SlackUserFunc
	now       func() time.Time
	log       *slog.Logger

	// Used by tick only, which runs in one goroutine.
	groups map[string]usergroupState // by user group id
	pruned time.Time
}

// usergroupState is what a user group was last seen or set to.
type usergroupState struct {
	members []string // sorted Slack ids; nil: nobody was on call
	checked time.Time
}

// NewAnnouncer returns an Announcer. The bot token, the schedules, the
// store and SlackUser are required.
func NewAnnouncer(cfg AnnouncerConfig) (*Announcer, error) {
	switch {
	case cfg.Slack.BotToken == "":
		return nil, errors.New("announcer: no Slack bot token (xoxb-...)")
	case cfg.Schedules == nil || cfg.Store == nil || cfg.SlackUser == nil:
		return nil, errors.New("announcer: the schedules, the store and the Slack user lookup are required")
	}
	log := cfg.Slack.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "announcer")
	opts := webAPIOptions(cfg.Slack.APIURL, log)
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Announcer{
		api:       slack.New(cfg.Slack.BotToken, append(opts, slack.OptionLog(debugLog{log}))...),
		schedules: cfg.Schedules,
		targets:   cfg.Targets,
		store:     cfg.Store,
		slackUser: cfg.SlackUser,
		now:       now,
		log:       log,
		groups:    map[string]usergroupState{},
	}, nil
}

// Run announces until ctx is done, then returns nil. It wakes at each
// moment something is due, and at least every minute to see changes of
// the schedules.
func (a *Announcer) Run(ctx context.Context) error {
	for {
		next, err := a.tick(ctx, a.now())
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.log.Warn("announce on-call schedules", "err", err)
		}
		wait := maxAnnounceWait
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(a.now()), 0))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// tick makes the announcements due at now and returns the next moment
// one is due (zero if none is in sight). A schedule that fails does not
// stop the others; the errors are joined.
func (a *Announcer) tick(ctx context.Context, now time.Time) (time.Time, error) {
	var (
		next time.Time
		errs []error
	)
	for _, name := range a.schedules.Schedules() {
		due, err := a.announceSchedule(ctx, name, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("announce schedule %q: %w", name, err))
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	if now.Sub(a.pruned) >= 24*time.Hour {
		if _, err := a.store.PruneAnnouncements(ctx, now.Add(-announcementsKept)); err != nil {
			errs = append(errs, err)
		} else {
			a.pruned = now
		}
	}
	return next, errors.Join(errs...)
}

// announceSchedule makes one schedule's announcements due at now and
// returns its next due moment.
func (a *Announcer) announceSchedule(ctx context.Context, name string, now time.Time) (time.Time, error) {
	target := a.targets[name]
	if target.Location == nil {
		target.Location = time.UTC
	}
	// From a little before the oldest handoff still announced, to past the
	// gap horizon so that the last handoffs have an end.
	from, to := now.Add(-announceGrace-time.Minute), now.Add(gapHorizon+24*time.Hour)
	shifts, err := a.schedules.Shifts(ctx, name, from, to)
	if err != nil {
		return time.Time{}, fmt.Errorf("load shifts: %w", err)
	}
	shifts, ids, lookupErr := a.resolvePeople(ctx, shifts)
	tl := newShiftTimeline(shifts, from, to)
	handoffs, stints := tl.handoffs(), tl.stints()
	errs := []error{a.announceHandoffs(ctx, name, target, ids, handoffs, now)}
	if lookupErr != nil {
		// Who is on call is not certain: a person whose lookup failed may
		// be one already named by their Slack id. The user group and the
		// reminders wait for a tick that knows.
		errs = append(errs, fmt.Errorf("look up Slack users (user group and reminders skipped): %w", lookupErr))
	} else {
		errs = append(errs,
			a.remind(ctx, name, ids, stints, now),
			a.syncUsergroup(ctx, name, target, ids, tl.peopleAt(now), now))
	}
	errs = append(errs, a.warnGaps(ctx, name, target, tl, now))
	err = errors.Join(errs...)

	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, h := range handoffs {
		consider(h.at)
	}
	for _, s := range stints {
		consider(s.start.Add(-reminderLead))
	}
	if target.Channel != "" {
		consider(gapWarningTime(now, target.Location, 0))
		consider(gapWarningTime(now, target.Location, 1))
	}
	return next, err
}

// resolvePeople names the person of each shift by their Slack user id
// when they have one, so that a person named two ways (an email in the
// calendar, a Slack id in an override) is one person on call. It returns
// the shifts so renamed, the Slack ids among the names (people without a
// Slack user keep the name the schedule gives them) and the lookups that
// failed, whose people keep their names too.
func (a *Announcer) resolvePeople(ctx context.Context, shifts []oncall.Shift) ([]oncall.Shift, map[string]bool, error) {
	var (
		out   = make([]oncall.Shift, len(shifts))
		names = map[string]string{} // as the schedule names them -> as the announcer does
		ids   = map[string]bool{}
		errs  []error
	)
	for i, s := range shifts {
		name, seen := names[s.Person]
		if !seen {
			id, ok, err := a.slackUser(ctx, s.Person)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("person %q: %w", s.Person, err))
				name = s.Person
			case ok:
				name = id
				ids[id] = true
			default:
				name = s.Person
			}
			names[s.Person] = name
		}
		s.Person = name
		out[i] = s
	}
	return out, ids, errors.Join(errs...)
}

// announceHandoffs posts "now on call" for the handoffs due at now.
func (a *Announcer) announceHandoffs(ctx context.Context, name string, target AnnounceTarget, ids map[string]bool, handoffs []handoffEvent, now time.Time) error {
	if target.Channel == "" {
		return nil
	}
	var errs []error
	for _, h := range handoffs {
		if h.at.After(now) || h.at.Before(now.Add(-announceGrace)) {
			continue
		}
		// Keyed without the people: replicas may briefly disagree on who
		// it is (an override seen by one first), and one post is enough.
		key := storage.Announcement{Schedule: name, Kind: kindHandoff, At: h.at}
		errs = append(errs, a.once(ctx, key, func(ctx context.Context) error {
			return a.post(ctx, target.Channel, handoffText(name, ids, h))
		}))
	}
	return errors.Join(errs...)
}

func handoffText(name string, ids map[string]bool, h handoffEvent) string {
	until := ""
	if !h.until.IsZero() {
		until = " (until " + slackDate(h.until) + ")"
	}
	if len(h.people) == 0 {
		return fmt.Sprintf(":warning: Nobody is on call for *%s* now%s.", escape(name), until)
	}
	mentions := make([]string, len(h.people))
	for i, p := range h.people {
		mentions[i] = slackMention(ids, p)
	}
	return fmt.Sprintf("Now on call for *%s*: %s%s", escape(name), strings.Join(mentions, ", "), until)
}

// remind DMs the people whose time on call starts within the hour. Unlike
// a handoff, a reminder is not stale until the shift starts: after a
// restart, or for a shift added at short notice, it is sent late. ids are
// the people (stint.person) who are Slack user ids.
func (a *Announcer) remind(ctx context.Context, name string, ids map[string]bool, stints []stint, now time.Time) error {
	var errs []error
	for _, s := range stints {
		if s.start.Add(-reminderLead).After(now) || !s.start.After(now) {
			continue
		}
		if !ids[s.person] {
			a.log.Warn("no Slack user for an incoming person; no reminder sent", "schedule", name, "person", s.person)
			continue
		}
		id := s.person
		key := storage.Announcement{Schedule: name, Kind: kindReminder, At: s.start, Person: s.person}
		text := fmt.Sprintf(":pager: You are on call for *%s* from %s to %s.", escape(name), slackDate(s.start), slackDate(s.end))
		errs = append(errs, a.once(ctx, key, func(ctx context.Context) error {
			ch, _, _, err := a.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{id}})
			if err != nil {
				return unsentError{fmt.Errorf("open a direct message with %s: %w", id, err)}
			}
			return a.post(ctx, ch.ID, text)
		}))
	}
	return errors.Join(errs...)
}

// syncUsergroup makes the schedule's user group the people on call now.
// Slack cannot empty a user group: while nobody is on call it is left as
// it is. people are sorted and distinct; slackIDs tells which are Slack
// user ids.
func (a *Announcer) syncUsergroup(ctx context.Context, name string, target AnnounceTarget, slackIDs map[string]bool, people []string, now time.Time) error {
	if target.Usergroup == "" {
		return nil
	}
	var ids, unresolved []string
	for _, p := range people {
		if slackIDs[p] {
			ids = append(ids, p)
		} else {
			unresolved = append(unresolved, p)
		}
	}
	last, seen := a.groups[target.Usergroup]
	if len(ids) == 0 {
		if !seen || last.members != nil {
			a.log.Warn("nobody with a Slack user is on call; the user group is left as it is",
				"schedule", name, "usergroup", target.Usergroup, "unresolved", unresolved)
		}
		a.groups[target.Usergroup] = usergroupState{checked: now}
		return nil
	}
	if seen && slices.Equal(last.members, ids) && now.Sub(last.checked) < usergroupRecheck {
		return nil
	}
	current, err := a.api.GetUserGroupMembersContext(ctx, target.Usergroup)
	if err != nil {
		return fmt.Errorf("list the members of user group %s: %w", target.Usergroup, err)
	}
	slices.Sort(current)
	if !slices.Equal(slices.Compact(current), ids) {
		if _, err := a.api.UpdateUserGroupMembersContext(ctx, target.Usergroup, strings.Join(ids, ",")); err != nil {
			return fmt.Errorf("set the members of user group %s to %v: %w", target.Usergroup, ids, err)
		}
		a.log.Info("user group set to who is on call", "schedule", name, "usergroup", target.Usergroup, "members", ids)
		if len(unresolved) > 0 {
			a.log.Warn("people on call without a Slack user are not in the user group",
				"schedule", name, "usergroup", target.Usergroup, "unresolved", unresolved)
		}
	}
	a.groups[target.Usergroup] = usergroupState{members: ids, checked: now}
	return nil
}

// warnGaps posts, once a day from 09:00 in the schedule's time zone, the
// times in the next 14 days when nobody is on call, if there are any.
func (a *Announcer) warnGaps(ctx context.Context, name string, target AnnounceTarget, tl shiftTimeline, now time.Time) error {
	if target.Channel == "" {
		return nil
	}
	day := gapWarningTime(now, target.Location, 0)
	if now.Before(day) {
		return nil
	}
	gaps := tl.gaps(now, now.Add(gapHorizon))
	if len(gaps) == 0 {
		return nil
	}
	key := storage.Announcement{Schedule: name, Kind: kindGaps, At: day}
	return a.once(ctx, key, func(ctx context.Context) error {
		return a.post(ctx, target.Channel, gapsText(name, gaps))
	})
}

func gapsText(name string, gaps []coverageGap) string {
	var b strings.Builder
	fmt.Fprintf(&b, ":warning: Nobody is on call for *%s* at these times in the next 14 days:", escape(name))
	for _, g := range gaps[:min(len(gaps), maxGapsListed)] {
		fmt.Fprintf(&b, "\n• %s – %s", slackDate(g.start), slackDate(g.end))
	}
	if more := len(gaps) - maxGapsListed; more > 0 {
		fmt.Fprintf(&b, "\n…and %s more.", plural(more, "gap"))
	}
	return b.String()
}

// gapWarningTime is 09:00 in loc on the day of now, plus days.
func gapWarningTime(now time.Time, loc *time.Location, days int) time.Time {
	y, m, d := now.In(loc).Date()
	// Wall-clock 09:00 also on the days the clocks change.
	return time.Date(y, m, d+days, int(gapWarnAt/time.Hour), int(gapWarnAt%time.Hour/time.Minute), 0, 0, loc)
}

// once claims an announcement and, if this call made the claim, sends it.
// A send that Slack certainly did not take releases the claim, so that
// the next tick tries again while the announcement is due.
func (a *Announcer) once(ctx context.Context, key storage.Announcement, send func(context.Context) error) error {
	claimed, err := a.store.ClaimAnnouncement(ctx, key)
	if err != nil {
		return err
	}
	if !claimed {
		a.log.Debug("announcement made already", "announcement", key)
		return nil
	}
	if err := send(ctx); err != nil {
		if !certainlyUnsent(err) {
			return fmt.Errorf("send %s (not retried: Slack may have it): %w", key, err)
		}
		if rerr := a.store.ReleaseAnnouncement(context.WithoutCancel(ctx), key); rerr != nil {
			return errors.Join(fmt.Errorf("send %s: %w", key, err), rerr)
		}
		return fmt.Errorf("send %s (to be retried): %w", key, err)
	}
	a.log.Info("announced", "announcement", key)
	return nil
}

func (a *Announcer) post(ctx context.Context, channel, text string) error {
	if _, _, err := a.api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false)); err != nil {
		return fmt.Errorf("post to %s: %w", channel, err)
	}
	return nil
}

// slackMention shows a person as a Slack mention when they are one of the Slack
// user ids, else by name.
func slackMention(ids map[string]bool, person string) string {
	if ids[person] {
		return "<@" + person + ">"
	}
	return escape(person)
}

// unsentError marks an error after which Slack certainly has not got the
// message.
type unsentError struct{ err error }

func (u unsentError) Error() string { return u.err.Error() }
func (u unsentError) Unwrap() error { return u.err }

// certainlyUnsent reports whether Slack certainly did not take a message: it
// answered with an error, or it limited the rate.
func certainlyUnsent(err error) bool {
	if _, ok := errors.AsType[unsentError](err); ok {
		return true
	}
	if _, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		return true
	}
	_, ok := errors.AsType[*slack.RateLimitedError](err)
	return ok
}

// shiftTimeline answers what the announcements need to know of a schedule's
// shifts within [from, to).
type shiftTimeline struct {
	from, to time.Time
	shifts   []oncall.Shift // sorted by Start; empty ones dropped
}

// handoff is a change of who is on call.
type handoffEvent struct {
	at     time.Time
	people []string  // sorted; none for the start of a gap
	until  time.Time // the next handoff; zero if none before the window's end
}

// stint is a person's time on call: their overlapping or back-to-back
// shifts as one.
type stint struct {
	person     string
	start, end time.Time
}

// gap is a span when nobody is on call.
type coverageGap struct{ start, end time.Time }

func newShiftTimeline(shifts []oncall.Shift, from, to time.Time) shiftTimeline {
	var kept []oncall.Shift
	for _, s := range shifts {
		if s.Start.Before(s.End) {
			kept = append(kept, s)
		}
	}
	slices.SortFunc(kept, func(x, y oncall.Shift) int { return x.Start.Compare(y.Start) })
	return shiftTimeline{from: from, to: to, shifts: kept}
}

// peopleAt returns who is on call at t, sorted.
func (tl shiftTimeline) peopleAt(t time.Time) []string {
	var people []string
	for _, s := range tl.shifts {
		if !s.Start.After(t) && s.End.After(t) {
			people = append(people, s.Person)
		}
	}
	slices.Sort(people)
	return slices.Compact(people)
}

// handoffs lists the changes of who is on call within (from, to).
func (tl shiftTimeline) handoffs() []handoffEvent {
	var bounds []time.Time
	for _, s := range tl.shifts {
		for _, t := range []time.Time{s.Start, s.End} {
			if t.After(tl.from) && t.Before(tl.to) {
				bounds = append(bounds, t)
			}
		}
	}
	slices.SortFunc(bounds, time.Time.Compare)
	bounds = slices.CompactFunc(bounds, time.Time.Equal)

	var out []handoffEvent
	prev := tl.peopleAt(tl.from)
	for _, t := range bounds {
		people := tl.peopleAt(t)
		if slices.Equal(people, prev) {
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].until = t
		}
		out = append(out, handoffEvent{at: t, people: people})
		prev = people
	}
	return out
}

// stints lists each person's times on call, by start.
func (tl shiftTimeline) stints() []stint {
	var out []stint
	open := map[string]int{} // person -> index in out of their latest stint
	for _, s := range tl.shifts {
		if i, ok := open[s.Person]; ok && !s.Start.After(out[i].end) {
			if s.End.After(out[i].end) {
				out[i].end = s.End
			}
			continue
		}
		open[s.Person] = len(out)
		out = append(out, stint{person: s.Person, start: s.Start, end: s.End})
	}
	return out
}

// gaps lists the spans within [from, to) when nobody is on call.
func (tl shiftTimeline) gaps(from, to time.Time) []coverageGap {
	var out []coverageGap
	covered := from // everything before is covered or listed
	for _, s := range tl.shifts {
		if !covered.Before(to) {
			break
		}
		if s.Start.After(covered) {
			out = append(out, coverageGap{start: covered, end: earlier(s.Start, to)})
		}
		if s.End.After(covered) {
			covered = s.End
		}
	}
	if covered.Before(to) {
		out = append(out, coverageGap{start: covered, end: to})
	}
	return out
}

func earlier(x, y time.Time) time.Time {
	if x.Before(y) {
		return x
	}
	return y
}
