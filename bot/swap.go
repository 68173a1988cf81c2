package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
)

// Action ids of the buttons of a swap request (in the colleague's DM) and
// of the overrides list. Their values are compact JSON that holds all the
// click needs, so that a click on an old message works after a restart.
const (
	ActionIDSwapAccept     = "swap_accept"
	ActionIDSwapDecline    = "swap_decline"
	ActionIDOverrideCancel = "override_cancel"
)

// Callback ids of the modals. Their inputs have these block ids, and each
// input's action id is its block id.
const (
	CallbackIDSwap     = "oncall_swap"
	CallbackIDOverride = "oncall_override"

	inputShift     = "shift"
	inputSchedule  = "schedule"
	inputFrom      = "from"
	inputTo        = "to"
	inputColleague = "colleague"
)

// swapRequest asks a colleague (To) to take the requester's (From) time on
// a schedule, [Start, End) in Unix seconds. It is the value of the Accept
// and Decline buttons. It needs no signature: only Slack can send the
// bot a click, on a message only the bot can write; what it asks is
// checked again on Accept.
type swapRequest struct {
	Schedule string `json:"s"`
	Start    int64  `json:"a"`
	End      int64  `json:"b"`
	From     string `json:"f"`
	To       string `json:"t"`
}

func (r swapRequest) start() time.Time { return time.Unix(r.Start, 0).UTC() }
func (r swapRequest) end() time.Time   { return time.Unix(r.End, 0).UTC() }

func (r swapRequest) valid() bool {
	return r.Schedule != "" && r.End > r.Start && isSlackID(r.From) && isSlackID(r.To) && r.From != r.To
}

// overrideRef is the value of an override's Cancel button.
type overrideRef struct {
	Schedule string `json:"s"`
	ID       int64  `json:"id"`
	Start    int64  `json:"a"`
	End      int64  `json:"b"`
}

func encodeRef(v any) string {
	b, _ := json.Marshal(v) // plain structs of strings and numbers
	return string(b)
}

// modalMeta is a modal's private_metadata: where to answer the command
// that opened it.
type modalMeta struct {
	ResponseURL string `json:"r,omitempty"`
}

func (b *Bot) cmdSwap(ctx context.Context, cmd slack.SlashCommand, _ []string) {
	if b.sched.overrides == nil {
		b.respond(ctx, cmd.ResponseURL, "Shift swaps are not available: oncall runs without its database.")
		return
	}
	now := b.now()
	mine, _ := b.shiftsOf(ctx, cmd.UserID, now, myShiftsHorizon)
	loc := b.sched.people.location(ctx, cmd.UserID)
	view := swapModal(mine, loc, b.sched.schedules.Schedules(), now, encodeRef(modalMeta{ResponseURL: cmd.ResponseURL}))
	if _, err := b.api.OpenViewContext(ctx, cmd.TriggerID, view); err != nil {
		b.log.Error("open the swap dialog", "user", cmd.UserID, "err", err)
		b.respond(ctx, cmd.ResponseURL, ":x: Could not open the swap dialog. Please try again.")
	}
}

// swapModal is the dialog of /oncall swap: one of the requester's next
// shifts, or a schedule and a time range; and the colleague.
func swapModal(mine []slot, loc *time.Location, schedules []string, now time.Time, meta string) slack.ModalViewRequest {
	blocks := []slack.Block{slack.NewSectionBlock(markdown(
		"Give one of your shifts, or a time range of a schedule, to a colleague. "+
			"They get a message to accept or decline; the swap takes effect when they accept."), nil, nil,
		slack.SectionBlockOptionBlockID("intro"))}
	var options []*slack.OptionBlockObject
	for _, s := range mine {
		start := s.Start
		if start.Before(now) {
			start = now.Truncate(time.Minute)
		}
		value := fmt.Sprintf("%d|%d|%s", start.Unix(), s.End.Unix(), s.Schedule)
		if len(value) > maxOptionValue || len(options) == maxOptions {
			continue
		}
		label := optionLabel(slot{Schedule: s.Schedule, Start: start, End: s.End}, loc)
		options = append(options, slack.NewOptionBlockObject(value, plain(label), nil))
	}
	if len(options) > 0 {
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick a shift"), inputShift, options...)
		in := slack.NewInputBlock(inputShift, plain("Your shift"), plain("Or give a time range below instead."), sel)
		in.Optional = true
		blocks = append(blocks, in)
	} else {
		blocks = append(blocks, slack.NewContextBlock("no_shifts", markdown(fmt.Sprintf(
			"You have no shifts in the next %d days: pick a schedule and a time range.", int(myShiftsHorizon/(24*time.Hour))))))
	}
	blocks = append(blocks, scheduleRangeInputs(schedules, true)...)
	colleague := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Pick a colleague"), inputColleague)
	blocks = append(blocks, slack.NewInputBlock(inputColleague, plain("Colleague who takes it"), nil, colleague))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Swap a shift"),
		Close:           plain("Cancel"),
		Submit:          plain("Ask"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		PrivateMetadata: meta,
		CallbackID:      CallbackIDSwap,
	}
}

// scheduleRangeInputs are the schedule select and the from and to pickers.
func scheduleRangeInputs(schedules []string, optional bool) []slack.Block {
	var options []*slack.OptionBlockObject
	for _, s := range schedules {
		if len(s) <= maxOptionValue && len(options) < maxOptions {
			options = append(options, slack.NewOptionBlockObject(s, plain(truncate(s, maxOptionText)), nil))
		}
	}
	var blocks []slack.Block
	if len(options) > 0 {
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick a schedule"), inputSchedule, options...)
		if len(options) == 1 {
			sel.InitialOption = options[0]
		}
		in := slack.NewInputBlock(inputSchedule, plain("Schedule"), nil, sel)
		in.Optional = optional
		blocks = append(blocks, in)
	}
	from := slack.NewInputBlock(inputFrom, plain("From"), nil, slack.NewDateTimePickerBlockElement(inputFrom))
	to := slack.NewInputBlock(inputTo, plain("To"), nil, slack.NewDateTimePickerBlockElement(inputTo))
	from.Optional, to.Optional = optional, optional
	return append(blocks, from, to)
}

// overrideModal is the dialog of /oncall override without arguments.
func overrideModal(schedules []string, meta string) slack.ModalViewRequest {
	blocks := []slack.Block{slack.NewSectionBlock(markdown("Take a time range of a schedule yourself: you are on call then, whoever the schedule says."),
		nil, nil, slack.SectionBlockOptionBlockID("intro"))}
	blocks = append(blocks, scheduleRangeInputs(schedules, false)...)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Take a shift"),
		Close:           plain("Cancel"),
		Submit:          plain("Take it"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		PrivateMetadata: meta,
		CallbackID:      CallbackIDOverride,
	}
}

// handleViewSubmission checks a submitted modal. The reply rides on the
// ack: nil closes the modal, errors show at its inputs. work, when not
// nil, is done after the ack.
func (b *Bot) handleViewSubmission(ctx context.Context, cb slack.InteractionCallback) (reply any, work func(context.Context)) {
	if b.sched.schedules == nil || b.sched.overrides == nil {
		return nil, nil
	}
	var values map[string]map[string]slack.BlockAction
	if cb.View.State != nil {
		values = cb.View.State.Values
	}
	input := func(id string) slack.BlockAction { return values[id][id] }
	var meta modalMeta
	_ = json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta) // absent: answer by DM
	user := cb.User.ID
	vctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()

	switch cb.View.CallbackID {
	case CallbackIDSwap:
		r, errs := b.validateSwap(vctx, user, input)
		if len(errs) > 0 {
			return slack.NewErrorsViewSubmissionResponse(errs), nil
		}
		return nil, func(ctx context.Context) { b.sendSwapRequest(ctx, r, meta.ResponseURL) }
	case CallbackIDOverride:
		schedule := input(inputSchedule).SelectedOption.Value
		start, end := unixTime(input(inputFrom).SelectedDateTime), unixTime(input(inputTo).SelectedDateTime)
		start, problem := b.checkRange(schedule, start, end)
		if problem != "" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{inputFrom: problem}), nil
		}
		return nil, func(ctx context.Context) {
			b.tellRequester(ctx, meta.ResponseURL, user, b.takeOver(ctx, user, schedule, start, end))
		}
	}
	b.log.Debug("ignoring a view submission", "callback_id", cb.View.CallbackID)
	return nil, nil
}

func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// validateSwap reads the swap dialog. Errors are by input block id.
func (b *Bot) validateSwap(ctx context.Context, user string, input func(string) slack.BlockAction) (swapRequest, map[string]string) {
	errs := map[string]string{}
	r := swapRequest{From: user, To: input(inputColleague).SelectedUser}
	shift := input(inputShift).SelectedOption.Value
	schedule := input(inputSchedule).SelectedOption.Value
	from, to := input(inputFrom).SelectedDateTime, input(inputTo).SelectedDateTime
	field := inputShift
	switch {
	case from != 0 || to != 0:
		field = inputFrom
		if from == 0 {
			errs[inputFrom] = "Pick the start of the time range."
		}
		if to == 0 {
			errs[inputTo] = "Pick the end of the time range."
		}
		if schedule == "" {
			if _, _, s, ok := parseShiftValue(shift); ok {
				schedule = s
			} else {
				errs[inputSchedule] = "Pick the schedule of the time range."
			}
		}
		r.Schedule, r.Start, r.End = schedule, from, to
	case shift != "":
		start, end, s, ok := parseShiftValue(shift)
		if !ok {
			errs[inputShift] = "Pick the shift again."
		}
		r.Schedule, r.Start, r.End = s, start, end
	default:
		errs[inputShift] = "Pick one of your shifts, or a schedule and a time range below."
	}
	switch r.To {
	case "":
		errs[inputColleague] = "Pick the colleague who takes the shift."
	case user:
		errs[inputColleague] = "That is you: pick a colleague."
	}
	if len(errs) > 0 {
		return r, errs
	}

	start, problem := b.checkRange(r.Schedule, r.start(), r.end())
	if problem != "" {
		errs[field] = problem
		return r, errs
	}
	r.Start = start.Unix()
	shifts, err := b.sched.schedules.Shifts(ctx, r.Schedule, r.start(), r.end())
	if err != nil {
		b.log.Error("check a swap against the schedule", "schedule", r.Schedule, "err", err)
		errs[field] = "Could not read the schedule. Please try again."
		return r, errs
	}
	slots := b.slots(ctx, shifts)
	admin := b.isAdmin(ctx, user)
	switch {
	case !admin && !covers(slots, user, r.start(), r.end()):
		errs[field] = fmt.Sprintf("You are not on call on %s for all of that time. Only the person on call, or an admin, can give it away.", r.Schedule)
	case covers(slots, r.To, r.start(), r.end()):
		errs[inputColleague] = "They are on call then already."
	default:
		if other, ok := alsoOnCall(slots, r.start(), r.end(), user, r.To); ok && !admin {
			errs[field] = fmt.Sprintf("%s is also on call then, and a swap would take them off too. Ask an admin.", personText(other))
		}
	}
	return r, errs
}

func parseShiftValue(v string) (start, end int64, schedule string, ok bool) {
	a, rest, ok1 := strings.Cut(v, "|")
	e, s, ok2 := strings.Cut(rest, "|")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(e, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || s == "" || end <= start {
		return 0, 0, "", false
	}
	return start, end, s, true
}

// checkRange checks a time range of an override and returns its start,
// moved to now when it is past; problem says what is wrong, for people.
func (b *Bot) checkRange(schedule string, start, end time.Time) (time.Time, string) {
	now := b.now()
	switch {
	case schedule == "":
		return start, "Pick a schedule."
	case !b.knownSchedule(schedule):
		return start, fmt.Sprintf("There is no schedule %q.", schedule)
	case start.IsZero() || end.IsZero():
		return start, "Pick the start and the end."
	case !end.After(start):
		return start, "The end must be after the start."
	case !end.After(now):
		return start, "That time is over."
	}
	if start.Before(now) {
		start = now.Truncate(time.Minute)
	}
	if end.Sub(start) > maxOverrideSpan {
		return start, fmt.Sprintf("That is too long: at most %d days at once.", int(maxOverrideSpan/(24*time.Hour)))
	}
	return start, ""
}

func (b *Bot) knownSchedule(name string) bool {
	for _, s := range b.sched.schedules.Schedules() {
		if s == name {
			return true
		}
	}
	return false
}

// sendSwapRequest asks the colleague in a DM, and tells the requester.
func (b *Bot) sendSwapRequest(ctx context.Context, r swapRequest, responseURL string) {
	text := fmt.Sprintf("<@%s> asks you to take their on-call shift of %s.", r.From, r.Schedule)
	if _, _, err := b.dm(ctx, r.To, text, swapRequestBlocks(r)...); err != nil {
		b.log.Error("send a swap request", "schedule", r.Schedule, "from", r.From, "to", r.To, "err", err)
		b.tellRequester(ctx, responseURL, r.From, fmt.Sprintf(":x: Could not send your request to <@%s>. Please try again.", r.To))
		return
	}
	b.log.Info("swap requested", "schedule", r.Schedule, "from", r.From, "to", r.To, "start", r.start(), "end", r.end())
	b.tellRequester(ctx, responseURL, r.From, fmt.Sprintf(
		"Asked <@%s> to take your shift of *%s*, %s. You will get a message when they answer.",
		r.To, escape(r.Schedule), span(r.start(), r.end())))
}

// tellRequester answers through the response_url of the command that
// started it all, or by DM when there is none.
func (b *Bot) tellRequester(ctx context.Context, responseURL, user, text string) {
	if responseURL != "" {
		b.respond(ctx, responseURL, text)
		return
	}
	b.tellByDM(ctx, user, text)
}

// handleScheduleAction handles a click on a swap request or an override's
// Cancel; false when the action is not one of those.
func (b *Bot) handleScheduleAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) bool {
	switch a.ActionID {
	case ActionIDSwapAccept, ActionIDSwapDecline, ActionIDOverrideCancel:
	default:
		return false
	}
	if b.sched.schedules == nil || b.sched.overrides == nil {
		b.respond(ctx, cb.ResponseURL, "Swaps and overrides are not available: no schedules are configured.")
		return true
	}
	if a.ActionID == ActionIDOverrideCancel {
		var ref overrideRef
		if err := json.Unmarshal([]byte(a.Value), &ref); err != nil || ref.ID <= 0 || ref.Schedule == "" {
			b.log.Warn("Cancel button without an override", "value", a.Value)
			return true
		}
		b.cancelOverride(ctx, cb, ref)
		return true
	}
	var r swapRequest
	if err := json.Unmarshal([]byte(a.Value), &r); err != nil || !r.valid() {
		b.log.Warn("swap button without a valid request", "action_id", a.ActionID, "value", a.Value)
		return true
	}
	if cb.User.ID != r.To {
		b.respond(ctx, cb.ResponseURL, fmt.Sprintf("This request is for <@%s>.", r.To))
		return true
	}
	if a.ActionID == ActionIDSwapDecline {
		b.declineSwap(ctx, cb, r)
		return true
	}
	unlock := b.sched.accepting.lock(a.Value)
	defer unlock()
	b.acceptSwap(ctx, cb, r)
	return true
}

func (b *Bot) acceptSwap(ctx context.Context, cb slack.InteractionCallback, r swapRequest) {
	log := b.log.With("schedule", r.Schedule, "from", r.From, "to", r.To, "start", r.start(), "end", r.end())
	what := fmt.Sprintf("*%s*, %s", escape(r.Schedule), span(r.start(), r.end()))
	o, done, problem, err := b.applySwap(ctx, r)
	switch {
	case err != nil:
		log.Error("accept a swap", "err", err)
		b.respond(ctx, cb.ResponseURL, ":x: Could not accept because of an internal error. Please try again.")
	case problem != "":
		log.Info("swap no longer applies", "problem", problem)
		b.updateDM(ctx, cb, r, ":warning: Nothing changed: "+problem)
		b.tellByDM(ctx, r.From, fmt.Sprintf(":warning: <@%s> accepted your request for %s, but nothing changed: %s", r.To, what, problem))
	case !done:
		b.updateDM(ctx, cb, r, fmt.Sprintf(":white_check_mark: You accepted: you are on call for %s.", what))
	default:
		log.Info("swap accepted", "override", o.ID)
		b.updateDM(ctx, cb, r, fmt.Sprintf(":white_check_mark: You accepted: you are on call for %s.", what))
		b.tellByDM(ctx, r.From, fmt.Sprintf(":white_check_mark: <@%s> accepted: they are on call for %s instead of you.", r.To, what))
		b.postNote(ctx, r.Schedule, fmt.Sprintf(":repeat: <@%s> takes over %s from <@%s>.", r.To, what, r.From))
	}
}

// applySwap stores the override of an accepted swap request unless it is
// stored already (a double click: done is false then). problem says why
// the request no longer applies.
func (b *Bot) applySwap(ctx context.Context, r swapRequest) (o oncall.Override, done bool, problem string, err error) {
	start, end := r.start(), r.end()
	if existing, found, err := b.findOverride(ctx, r.Schedule, r.To, start, end); err != nil || found {
		return existing, false, "", err
	}
	now := b.now()
	if !end.After(now) {
		return o, false, "the time of the request is over.", nil
	}
	if !b.isAdmin(ctx, r.From) {
		from := start
		if from.Before(now) {
			from = now
		}
		shifts, err := b.sched.schedules.Shifts(ctx, r.Schedule, from, end)
		if err != nil {
			return o, false, "", fmt.Errorf("shifts of %q: %w", r.Schedule, err)
		}
		slots := b.slots(ctx, shifts)
		if !covers(slots, r.From, from, end) {
			return o, false, fmt.Sprintf("<@%s> is no longer on call for all of that time.", r.From), nil
		}
		if other, ok := alsoOnCall(slots, from, end, r.From, r.To); ok {
			return o, false, fmt.Sprintf("%s is now also on call then, and the swap would take them off too.", personText(other)), nil
		}
	}
	o, err = b.sched.overrides.AddOverride(ctx, oncall.Override{
		Schedule:  r.Schedule,
		Person:    b.sched.people.personFor(ctx, r.To),
		Start:     start,
		End:       end,
		CreatedBy: oncall.SlackActor(r.From),
		Reason:    "swap accepted in Slack",
	})
	if errors.Is(err, oncall.ErrConflict) {
		return o, false, "", nil // stored meanwhile, e.g. by another replica
	}
	if err != nil {
		return o, false, "", fmt.Errorf("store the override of %q: %w", r.Schedule, err)
	}
	b.sched.schedules.OverridesChanged(r.Schedule)
	return o, true, "", nil
}

// findOverride looks for an override of the schedule that puts the Slack
// user on call for exactly [start, end).
func (b *Bot) findOverride(ctx context.Context, schedule, user string, start, end time.Time) (oncall.Override, bool, error) {
	list, err := b.sched.overrides.Overrides(ctx, schedule, start, end)
	if err != nil {
		return oncall.Override{}, false, fmt.Errorf("overrides of %q: %w", schedule, err)
	}
	for _, o := range list {
		if o.Start.Equal(start) && o.End.Equal(end) {
			if id, _ := b.sched.people.slackID(ctx, o.Person); id == user {
				return o, true, nil
			}
		}
	}
	return oncall.Override{}, false, nil
}

func (b *Bot) declineSwap(ctx context.Context, cb slack.InteractionCallback, r swapRequest) {
	what := fmt.Sprintf("*%s*, %s", escape(r.Schedule), span(r.start(), r.end()))
	b.log.Info("swap declined", "schedule", r.Schedule, "from", r.From, "to", r.To)
	b.updateDM(ctx, cb, r, ":no_entry_sign: You declined.")
	b.tellByDM(ctx, r.From, fmt.Sprintf(":no_entry_sign: <@%s> declined your request to take %s.", r.To, what))
}

// updateDM replaces the buttons of the swap request the click was on with
// the outcome.
func (b *Bot) updateDM(ctx context.Context, cb slack.InteractionCallback, r swapRequest, outcome string) {
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	_, _, _, err := b.api.UpdateMessageContext(ctx, channel, cb.Container.MessageTs,
		slack.MsgOptionText(outcome, false), slack.MsgOptionBlocks(swapOutcomeBlocks(r, outcome)...))
	if err != nil {
		b.log.Warn("update a swap request", "channel", channel, "ts", cb.Container.MessageTs, "err", err)
	}
}

func (b *Bot) tellByDM(ctx context.Context, user, text string) {
	if _, _, err := b.dm(ctx, user, text); err != nil {
		b.log.Warn("tell a user by DM", "user", user, "err", err)
	}
}

func (b *Bot) cmdOverride(ctx context.Context, cmd slack.SlashCommand, args []string) {
	if b.sched.overrides == nil {
		b.respond(ctx, cmd.ResponseURL, "Overrides are not available: oncall runs without its database.")
		return
	}
	if len(args) == 0 {
		view := overrideModal(b.sched.schedules.Schedules(), encodeRef(modalMeta{ResponseURL: cmd.ResponseURL}))
		if _, err := b.api.OpenViewContext(ctx, cmd.TriggerID, view); err != nil {
			b.log.Error("open the override dialog", "user", cmd.UserID, "err", err)
			b.respond(ctx, cmd.ResponseURL, ":x: Could not open the dialog. Please try again.")
		}
		return
	}
	names, problem := b.scheduleNames(args[:1])
	if problem != "" {
		b.respond(ctx, cmd.ResponseURL, problem)
		return
	}
	loc := b.sched.people.location(ctx, cmd.UserID)
	start, end, ok := parseRange(args[1:], loc)
	if !ok {
		b.respond(ctx, cmd.ResponseURL, "Usage: `"+cmdName(cmd)+" override &lt;schedule&gt; &lt;from&gt; &lt;to&gt;`, e.g. `"+cmdName(cmd)+
			" override "+codeSafe(names[0])+" 2026-01-05T09:00 2026-01-05T18:00` (times in your Slack time zone); "+
			"or `"+cmdName(cmd)+" override` alone for a dialog.")
		return
	}
	start, problem = b.checkRange(names[0], start, end)
	if problem != "" {
		b.respond(ctx, cmd.ResponseURL, ":warning: "+problem)
		return
	}
	b.respond(ctx, cmd.ResponseURL, b.takeOver(ctx, cmd.UserID, names[0], start, end))
}

func cmdName(cmd slack.SlashCommand) string {
	if cmd.Command == "" {
		return "/oncall"
	}
	return cmd.Command
}

// parseRange reads "<from> <to>", each a date and time in loc
// (2026-01-05T09:00, or 2026-01-05 09:00, or RFC 3339 with its offset).
func parseRange(args []string, loc *time.Location) (from, to time.Time, ok bool) {
	var times []time.Time
	for i := 0; i < len(args); i++ {
		if i+1 < len(args) {
			if t, err := time.ParseInLocation("2006-01-02 15:04", args[i]+" "+args[i+1], loc); err == nil {
				times = append(times, t)
				i++
				continue
			}
		}
		t, ok := parseWhen(args[i], loc)
		if !ok {
			return from, to, false
		}
		times = append(times, t)
	}
	if len(times) != 2 {
		return from, to, false
	}
	return times[0], times[1], true
}

func parseWhen(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// takeOver puts the user on call for [start, end) of the schedule, tells
// the people it replaces and the schedule's channel, and returns what to
// tell the user.
func (b *Bot) takeOver(ctx context.Context, user, schedule string, start, end time.Time) string {
	what := fmt.Sprintf("*%s*, %s", escape(schedule), span(start, end))
	log := b.log.With("schedule", schedule, "user", user, "start", start, "end", end)
	unlock := b.sched.accepting.lock(fmt.Sprintf("take:%s:%s:%d:%d", user, schedule, start.Unix(), end.Unix()))
	defer unlock()
	if _, found, err := b.findOverride(ctx, schedule, user, start, end); err != nil {
		log.Error("take over a schedule", "err", err)
		return ":x: Could not make the override because of an internal error. Please try again."
	} else if found {
		return fmt.Sprintf(":white_check_mark: You are on call for %s.", what)
	}
	shifts, err := b.sched.schedules.Shifts(ctx, schedule, start, end)
	if err != nil {
		log.Error("take over a schedule", "err", err)
		return ":x: Could not read the schedule because of an internal error. Please try again."
	}
	before := b.slots(ctx, shifts)
	if covers(before, user, start, end) {
		return fmt.Sprintf("You are on call for %s already.", what)
	}
	o, err := b.sched.overrides.AddOverride(ctx, oncall.Override{
		Schedule:  schedule,
		Person:    b.sched.people.personFor(ctx, user),
		Start:     start,
		End:       end,
		CreatedBy: oncall.SlackActor(user),
		Reason:    "taken in Slack",
	})
	if errors.Is(err, oncall.ErrConflict) {
		return fmt.Sprintf(":white_check_mark: You are on call for %s.", what)
	}
	if err != nil {
		log.Error("store an override", "err", err)
		return ":x: Could not make the override because of an internal error. Please try again."
	}
	b.sched.schedules.OverridesChanged(schedule)
	log.Info("override made in Slack", "override", o.ID)
	b.postNote(ctx, schedule, fmt.Sprintf(":raising_hand: <@%s> takes %s.", user, what))
	told := map[string]bool{user: true}
	for _, s := range before {
		if s.Slack != "" && !told[s.Slack] {
			told[s.Slack] = true
			b.tellByDM(ctx, s.Slack, fmt.Sprintf(":information_source: <@%s> takes over from you: %s.", user, what))
		}
	}
	return fmt.Sprintf(":white_check_mark: You are on call for %s.", what)
}

func (b *Bot) cmdOverrides(ctx context.Context, cmd slack.SlashCommand, args []string) {
	if b.sched.overrides == nil {
		b.respond(ctx, cmd.ResponseURL, "Overrides are not available: oncall runs without its database.")
		return
	}
	names, problem := b.scheduleNames(args)
	if problem != "" {
		b.respond(ctx, cmd.ResponseURL, problem)
		return
	}
	now := b.now()
	admin := b.isAdmin(ctx, cmd.UserID)
	var items []overrideItem
	var failed []string
	for _, name := range names {
		list, err := b.sched.overrides.Overrides(ctx, name, now, now.Add(overridesSpan))
		if err != nil {
			b.log.Error("list overrides", "schedule", name, "err", err)
			failed = append(failed, name)
			continue
		}
		for _, o := range list {
			id, _ := b.sched.people.slackID(ctx, o.Person)
			items = append(items, overrideItem{Override: o, Slack: id, CanCancel: mayCancel(admin, cmd.UserID, o, id)})
		}
	}
	sortOverrides(items)
	text, blocks := renderOverrides(items, failed)
	b.respond(ctx, cmd.ResponseURL, text, blocks...)
}

func sortOverrides(items []overrideItem) {
	slices.SortFunc(items, func(a, b overrideItem) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID, b.ID))
	})
}

// mayCancel says whether the user may cancel the override: its creator,
// the person it puts on call, and admins may.
func mayCancel(admin bool, user string, o oncall.Override, personSlack string) bool {
	return admin || o.CreatedBy == oncall.SlackActor(user) || personSlack == user
}

func (b *Bot) cancelOverride(ctx context.Context, cb slack.InteractionCallback, ref overrideRef) {
	user := cb.User.ID
	log := b.log.With("schedule", ref.Schedule, "override", ref.ID, "user", user)
	list, err := b.sched.overrides.Overrides(ctx, ref.Schedule, time.Unix(ref.Start, 0), time.Unix(ref.End, 0))
	if err != nil {
		log.Error("find the override to cancel", "err", err)
		b.respond(ctx, cb.ResponseURL, ":x: Could not cancel because of an internal error. Please try again.")
		return
	}
	var o oncall.Override
	for _, x := range list {
		if x.ID == ref.ID {
			o = x
		}
	}
	if o.ID == 0 {
		b.respond(ctx, cb.ResponseURL, "That override is cancelled already.")
		return
	}
	person, _ := b.sched.people.slackID(ctx, o.Person)
	if !mayCancel(b.isAdmin(ctx, user), user, o, person) {
		b.respond(ctx, cb.ResponseURL, "Only the person who made an override, the person it puts on call, or an admin can cancel it.")
		return
	}
	err = b.sched.overrides.CancelOverride(ctx, o.ID, oncall.SlackActor(user))
	if errors.Is(err, oncall.ErrNotFound) {
		b.respond(ctx, cb.ResponseURL, "That override is cancelled already.")
		return
	}
	if err != nil {
		log.Error("cancel an override", "err", err)
		b.respond(ctx, cb.ResponseURL, ":x: Could not cancel because of an internal error. Please try again.")
		return
	}
	b.sched.schedules.OverridesChanged(o.Schedule)
	log.Info("override cancelled in Slack")
	who := personText(slot{Person: o.Person, Slack: person})
	what := fmt.Sprintf("*%s*: %s, %s", escape(o.Schedule), who, span(o.Start, o.End))
	b.respond(ctx, cb.ResponseURL, ":wastebasket: Cancelled the override of "+what+".")
	b.postNote(ctx, o.Schedule, fmt.Sprintf(":wastebasket: <@%s> cancelled the override of %s.", user, what))
	if person != "" && person != user {
		b.tellByDM(ctx, person, fmt.Sprintf(":wastebasket: <@%s> cancelled your override of *%s*, %s: the schedule applies again.",
			user, escape(o.Schedule), span(o.Start, o.End)))
	}
}
