package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
)

// untilResolved is the choice of the Silence menu that silences an
// incident until it is resolved.
const untilResolved = "resolved"

// silenceChoices are the options of the Silence menu, in order.
var silenceChoices = []struct {
	value string // after "<incident id>:" in the option's value
	text  string
	span  time.Duration // 0 for untilResolved
}{
	{"30m", "30 minutes", 30 * time.Minute},
	{"1h", "1 hour", time.Hour},
	{"4h", "4 hours", 4 * time.Hour},
	{"24h", "24 hours", 24 * time.Hour},
	{untilResolved, "Until resolved", 0},
}

// silenceMenu is the Silence menu of the incident's message.
func silenceMenu(id int64) *slack.SelectBlockElement {
	options := make([]*slack.OptionBlockObject, len(silenceChoices))
	for i, c := range silenceChoices {
		options[i] = slack.NewOptionBlockObject(fmt.Sprintf("%d:%s", id, c.value), plain(c.text), nil)
	}
	return slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Silence"), ActionIDSilence, options...)
}

// silenceUntil is the end of a silence chosen at now in the menu.
func silenceUntil(choice string, now time.Time) (time.Time, bool) {
	for _, c := range silenceChoices {
		switch {
		case c.value != choice:
		case c.value == untilResolved:
			return oncall.UntilResolved, true
		default:
			return now.Add(c.span).UTC(), true
		}
	}
	return time.Time{}, false
}

// untilText says until when, in mrkdwn: "until resolved", or "until" and
// the time in each reader's time zone.
func untilText(until time.Time) string {
	if until.Equal(oncall.UntilResolved) {
		return "until resolved"
	}
	return "until " + slackDate(until)
}

// silencedUntil reads the end of a silence from the note of its event:
// "until resolved" or "until <RFC 3339 time>".
func silencedUntil(note string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(note, "until ")
	if !ok {
		return time.Time{}, false
	}
	if rest == "resolved" {
		return oncall.UntilResolved, true
	}
	t, err := time.Parse(time.RFC3339, rest)
	return t, err == nil
}

// handleSilenceAction handles a choice in the Silence menu and a click on
// Unsilence, and says whether the action was one of them. The idempotency
// key is the click's (clickKey): a redelivered envelope silences once.
func (b *Bot) handleSilenceAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) bool {
	var (
		idText string
		until  time.Time // zero: unsilence
		what   = "unsilence"
	)
	switch a.ActionID {
	case ActionIDUnsilence:
		idText = a.Value
	case ActionIDSilence:
		what = "silence"
		var choice string
		idText, choice, _ = strings.Cut(a.SelectedOption.Value, ":")
		var ok bool
		if until, ok = silenceUntil(choice, b.now()); !ok {
			b.log.Warn("unknown choice in the Silence menu", "value", a.SelectedOption.Value)
			return true
		}
	default:
		return false
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		b.log.Warn("block action without an incident id", "action_id", a.ActionID, "value", a.Value,
			"option", a.SelectedOption.Value)
		return true
	}
	user := cb.User.ID
	if user == "" {
		b.log.Warn("block action without a user", "action_id", a.ActionID, "incident", id)
		return true
	}
	log := b.log.With("incident", id, "action", what, "user", user)

	inc, err := b.incidents.Silence(ctx, id, until, oncall.SlackActor(user), clickKey(cb, a))
	var text string
	switch {
	case err == nil && inc.Status == oncall.StatusResolved:
		text = fmt.Sprintf("Incident #%d is resolved: there is nothing to %s.", id, what)
	case err == nil:
		log.Info("incident "+what+"d from Slack", "until", until)
		return true
	case errors.Is(err, oncall.ErrNotFound):
		log.Info("incident "+what+" from Slack refused", "err", err)
		text = fmt.Sprintf(":warning: Incident #%d does not exist (any more).", id)
	default:
		log.Error("incident "+what+" from Slack failed", "err", err)
		text = fmt.Sprintf(":x: Could not %s incident #%d because of an internal error. Please try again.", what, id)
	}
	b.tellUser(ctx, cb, text)
	return true
}
