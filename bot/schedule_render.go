package bot

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
)

// slot is a span of time when one person is on call for a schedule, with
// the person resolved to a Slack user.
type slot struct {
	Schedule   string
	Person     string // as the schedule names them
	Slack      string // their Slack user id; "" when nobody matches
	Start, End time.Time
}

// key identifies the person: by Slack user when known, else by name.
func (s slot) key() string {
	if s.Slack != "" {
		return s.Slack
	}
	return "?" + s.Person
}

// personText names the person in mrkdwn: a mention, or for someone who
// matches no Slack user their name as the schedule has it, marked.
func personText(s slot) string {
	if s.Slack != "" {
		return "<@" + s.Slack + ">"
	}
	return escape(strings.TrimSpace(s.Person)) + " :warning:"
}

// unmatchedNote lists the people who match no Slack user, or "".
func unmatchedNote(slots []slot) string {
	var names []string
	for _, s := range slots {
		if n := strings.TrimSpace(s.Person); s.Slack == "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = escape(n)
	}
	return ":warning: Not matched to a Slack user: " + strings.Join(names, ", ") +
		". Add them to `users:` in the oncall config, by email or Slack id."
}

// span shows a time range for each reader's time zone.
func span(from, to time.Time) string { return slackDate(from) + " – " + slackDate(to) }

// whoEntry is what /oncall who shows of one schedule.
type whoEntry struct {
	Schedule  string
	Now, Next []slot
	Failed    bool // the schedule could not be read
}

func renderWho(entries []whoEntry) string {
	var b strings.Builder
	var all []slot
	for i, e := range entries {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "*%s*\n", escape(e.Schedule))
		if e.Failed {
			b.WriteString(":x: Could not read the schedule because of an internal error.")
			continue
		}
		all = append(all, e.Now...)
		all = append(all, e.Next...)
		if len(e.Now) == 0 {
			b.WriteString("• Now: nobody is on call :warning:\n")
		}
		for _, s := range e.Now {
			fmt.Fprintf(&b, "• Now: %s until %s\n", personText(s), slackDate(s.End))
		}
		if len(e.Next) == 0 {
			fmt.Fprintf(&b, "• Next: nobody in the next %d days", int(whoHorizon/(24*time.Hour)))
		}
		for j, s := range e.Next {
			if j > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "• Next: %s, %s", personText(s), span(s.Start, s.End))
		}
	}
	if note := unmatchedNote(all); note != "" {
		b.WriteString("\n\n" + note)
	}
	return b.String()
}

// maxTimelineLines bounds the lines of one schedule's timeline.
const maxTimelineLines = 200

// renderTimeline shows a schedule's shifts between from and to, one line
// each, with the gaps when nobody is on call.
func renderTimeline(schedule string, from, to time.Time, slots []slot) string {
	var lines []string
	covered := from
	for _, s := range slots {
		if s.Start.After(covered) {
			lines = append(lines, fmt.Sprintf("• %s  _nobody on call_ :warning:", span(covered, s.Start)))
		}
		lines = append(lines, fmt.Sprintf("• %s  %s", span(s.Start, s.End), personText(s)))
		if s.End.After(covered) {
			covered = s.End
		}
	}
	if covered.Before(to) {
		lines = append(lines, fmt.Sprintf("• %s  _nobody on call_ :warning:", span(covered, to)))
	}
	if len(lines) > maxTimelineLines {
		more := len(lines) - maxTimelineLines + 1
		lines = append(lines[:maxTimelineLines-1], fmt.Sprintf("… and %d more", more))
	}
	text := fmt.Sprintf("*%s*: %s\n%s", escape(schedule), span(from, to), strings.Join(lines, "\n"))
	if note := unmatchedNote(slots); note != "" {
		text += "\n" + note
	}
	return text
}

// renderMine lists a user's next shifts across the schedules.
func renderMine(mine []slot, failed []string, now time.Time) string {
	var b strings.Builder
	if len(mine) == 0 {
		fmt.Fprintf(&b, "You have no shifts in the next %d days.", int(myShiftsHorizon/(24*time.Hour)))
	} else {
		b.WriteString("*Your next shifts*")
	}
	for _, s := range mine {
		if s.Start.After(now) {
			fmt.Fprintf(&b, "\n• *%s*: %s", escape(s.Schedule), span(s.Start, s.End))
		} else {
			fmt.Fprintf(&b, "\n• *%s*: now, until %s", escape(s.Schedule), slackDate(s.End))
		}
	}
	for _, name := range failed {
		fmt.Fprintf(&b, "\n:x: Could not read schedule *%s* because of an internal error.", escape(name))
	}
	return b.String()
}

// overrideItem is an override as /oncall overrides lists it.
type overrideItem struct {
	oncall.Override
	Slack     string // the person's Slack user id, "" when unmatched
	CanCancel bool   // the viewer may cancel it
}

// maxListedOverrides keeps the list within Slack's 50 blocks.
const maxListedOverrides = 45

// renderOverrides lists overrides, each with a Cancel button when the
// viewer may cancel it.
func renderOverrides(items []overrideItem, failed []string) (string, []slack.Block) {
	if len(items) == 0 && len(failed) == 0 {
		return "There are no upcoming overrides.", nil
	}
	text := fmt.Sprintf("Upcoming overrides: %d", len(items))
	blocks := []slack.Block{slack.NewSectionBlock(markdown("*Upcoming overrides*"), nil, nil, slack.SectionBlockOptionBlockID("overrides"))}
	var people []slot
	for i, it := range items {
		if i == maxListedOverrides {
			blocks = append(blocks, slack.NewContextBlock("overrides_more", markdown(fmt.Sprintf("… and %d more", len(items)-i))))
			break
		}
		who := slot{Person: it.Person, Slack: it.Slack}
		people = append(people, who)
		line := fmt.Sprintf("*%s*: %s, %s", escape(it.Schedule), personText(who), span(it.Start, it.End))
		if by := actorText(it.CreatedBy, ""); it.CreatedBy != "" {
			line += "\n_by " + by
			if r := strings.TrimSpace(it.Reason); r != "" {
				line += ": " + escape(truncate(strings.Join(strings.Fields(r), " "), 200))
			}
			line += "_"
		}
		var accessory *slack.Accessory
		if it.CanCancel {
			accessory = slack.NewAccessory(cancelButton(it.Override))
		}
		blocks = append(blocks, slack.NewSectionBlock(markdown(line), nil, accessory,
			slack.SectionBlockOptionBlockID(fmt.Sprintf("override_%d", it.ID))))
	}
	for i, name := range failed {
		blocks = append(blocks, slack.NewContextBlock(fmt.Sprintf("failed_%d", i),
			markdown(fmt.Sprintf(":x: Could not read the overrides of *%s* because of an internal error.", escape(name)))))
	}
	if note := unmatchedNote(people); note != "" {
		blocks = append(blocks, slack.NewContextBlock("unmatched", markdown(note)))
	}
	return text, blocks
}

func cancelButton(o oncall.Override) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(ActionIDOverrideCancel, encodeRef(overrideRef{Schedule: o.Schedule, ID: o.ID,
		Start: o.Start.Unix(), End: o.End.Unix()}), plain("Cancel"))
	b.Style = slack.StyleDanger
	b.Confirm = slack.NewConfirmationBlockObject(plain("Cancel this override?"),
		markdown(fmt.Sprintf("The schedule of *%s* applies again from %s to %s.", escape(o.Schedule), slackDate(o.Start), slackDate(o.End))),
		plain("Cancel it"), plain("Keep it"))
	return b
}

// swapRequestBlocks is the DM that asks a colleague to take a shift.
func swapRequestBlocks(r swapRequest) []slack.Block {
	value := encodeRef(r)
	accept := slack.NewButtonBlockElement(ActionIDSwapAccept, value, plain("Accept"))
	accept.Style = slack.StylePrimary
	decline := slack.NewButtonBlockElement(ActionIDSwapDecline, value, plain("Decline"))
	return []slack.Block{
		slack.NewSectionBlock(markdown(swapRequestText(r)), nil, nil, slack.SectionBlockOptionBlockID("swap_request")),
		slack.NewActionBlock("swap_actions", accept, decline),
	}
}

func swapRequestText(r swapRequest) string {
	return fmt.Sprintf(":repeat: <@%s> asks you to take their on-call shift of *%s*, %s.",
		r.From, escape(r.Schedule), span(r.start(), r.end()))
}

// swapOutcomeBlocks replaces the request's buttons once it is answered.
func swapOutcomeBlocks(r swapRequest, outcome string) []slack.Block {
	return []slack.Block{
		slack.NewSectionBlock(markdown(swapRequestText(r)), nil, nil, slack.SectionBlockOptionBlockID("swap_request")),
		slack.NewContextBlock("swap_outcome", markdown(outcome)),
	}
}

// optionLabel shows a shift in a select, where Slack shows plain text
// only: in the viewer's time zone.
func optionLabel(s slot, loc *time.Location) string {
	const layout = "Mon 2 Jan 15:04"
	label := fmt.Sprintf("%s: %s – %s", s.Schedule, s.Start.In(loc).Format(layout), s.End.In(loc).Format(layout))
	return truncate(label, maxOptionText)
}

// Slack's limits on a select's options.
const (
	maxOptionText  = 75
	maxOptionValue = 150
	maxOptions     = 100
)
