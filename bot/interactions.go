package bot

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
)

// handleInteraction handles a click on the incident message's buttons and
// menus.
// Other interactions are ignored (they are acked already).
func (b *Bot) handleInteraction(ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		b.log.Debug("ignoring interaction", "type", cb.Type)
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if b.handleScheduleAction(ctx, cb, a) || b.handleSilenceAction(ctx, cb, a) {
			continue
		}
		b.handleAction(ctx, cb, a)
	}
}

func (b *Bot) handleAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	action, ok := actionOf(a.ActionID)
	if !ok {
		b.log.Debug("ignoring block action", "action_id", a.ActionID)
		return
	}
	id, err := strconv.ParseInt(a.Value, 10, 64)
	if err != nil || id <= 0 {
		b.log.Warn("block action without an incident id", "action_id", a.ActionID, "value", a.Value)
		return
	}
	user := cb.User.ID
	if user == "" {
		b.log.Warn("block action without a user", "action_id", a.ActionID, "incident", id)
		return
	}
	log := b.log.With("incident", id, "action", action, "user", user)

	inc, err := b.incidents.Act(ctx, id, action, oncall.SlackActor(user), clickKey(cb, a))
	if err == nil {
		log.Info("incident action from Slack")
		// A click on a page (a direct message) changes a message elsewhere:
		// say what the incident's state is now.
		if strings.HasPrefix(cb.Container.ChannelID, "D") && inc.ID == id {
			b.tellUser(ctx, cb, fmt.Sprintf("Incident #%d: %s", id, statusLine(inc)))
		}
		return
	}
	var text string
	switch {
	case errors.Is(err, oncall.ErrConflict) && action == oncall.ActionReopen:
		text = fmt.Sprintf(":warning: Incident #%d cannot be reopened: a newer incident for the same alerts is open.", id)
	case errors.Is(err, oncall.ErrConflict):
		text = fmt.Sprintf(":warning: Could not %s incident #%d: it changed meanwhile.", action, id)
	case errors.Is(err, oncall.ErrNotFound):
		text = fmt.Sprintf(":warning: Incident #%d does not exist (any more).", id)
	default:
		log.Error("incident action from Slack failed", "err", err)
		text = fmt.Sprintf(":x: Could not %s incident #%d because of an internal error. Please try again.", action, id)
	}
	if errors.Is(err, oncall.ErrConflict) || errors.Is(err, oncall.ErrNotFound) {
		log.Info("incident action from Slack refused", "err", err)
	}
	b.tellUser(ctx, cb, text)
}

// clickKey identifies one click: Slack sends the same action_ts when it
// redelivers the envelope, and a new one for every click. Most actions need
// no more: a second Acknowledge finds the incident acknowledged already.
// Escalate changes no status, so its key is the message version the person
// saw instead: clicks on one version (a double click, two people at once)
// escalate once, and the message shows each escalation, so the next click
// is on a new version.
func clickKey(cb slack.InteractionCallback, a *slack.BlockAction) string {
	if a.ActionID == ActionIDEscalate {
		seen, _ := json.Marshal(cb.Message.Blocks)
		sum := sha256.Sum256(seen)
		return strings.Join([]string{"slack", cb.Container.ChannelID, cb.Container.MessageTs, a.ActionID, hex.EncodeToString(sum[:12])}, ":")
	}
	return strings.Join([]string{"slack", cb.Container.ChannelID, cb.Container.MessageTs, a.ActionTs, cb.User.ID, a.ActionID}, ":")
}

// tellUser shows text to the user who clicked, and to nobody else.
func (b *Bot) tellUser(ctx context.Context, cb slack.InteractionCallback, text string) {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	if channel == "" {
		return
	}
	if _, err := b.api.PostEphemeralContext(ctx, channel, cb.User.ID, slack.MsgOptionText(text, false)); err != nil {
		b.log.Warn("tell the user in Slack", "user", cb.User.ID, "err", err)
	}
}

// escalateCommand answers /oncall escalate <incident> [note]: the
// Escalate button, by incident number. Bad input is answered on the ack;
// the escalation is made after it. Its idempotency key is the command's
// trigger id, so an envelope Slack delivers again escalates once.
func (b *Bot) escalateCommand(cmd slack.SlashCommand) (reply any, work func(context.Context)) {
	name := commandName(cmd)
	usage := fmt.Sprintf("Usage: `%s escalate <incident> [note]`, e.g. `%s escalate 12 the database is down too`.", name, name)
	_, args := splitCommand(cmd.Text)
	if len(args) == 0 {
		return ephemeralReply(usage), nil
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return ephemeralReply(fmt.Sprintf("`%s` is not an incident number. %s", codeSafe(truncate(args[0], 50)), usage)), nil
	}
	if cmd.UserID == "" || cmd.TriggerID == "" {
		b.log.Warn("slash command without a user or a trigger id", "command", "escalate")
		return ephemeralReply(":x: Slack sent this command incomplete. Please try again."), nil
	}
	note := textAfter(cmd.Text, 2)
	key := strings.Join([]string{"slack", "command", cmd.TriggerID, "escalate"}, ":")
	return nil, func(ctx context.Context) {
		b.respond(ctx, cmd.ResponseURL, b.escalate(ctx, cmd.UserID, id, note, key))
	}
}

// escalate escalates the incident for the Slack user and returns the
// answer. The incident service takes no note: one is added to the
// incident's thread.
func (b *Bot) escalate(ctx context.Context, user string, id int64, note, key string) string {
	log := b.log.With("incident", id, "action", oncall.ActionEscalate, "user", user)
	inc, err := b.incidents.Act(ctx, id, oncall.ActionEscalate, oncall.SlackActor(user), key)
	switch {
	case errors.Is(err, oncall.ErrNotFound):
		return fmt.Sprintf(":warning: Incident #%d does not exist.", id)
	case errors.Is(err, oncall.ErrConflict):
		return fmt.Sprintf(":warning: Could not escalate incident #%d: it changed meanwhile. Please try again.", id)
	case err != nil:
		log.Error("escalate from a slash command", "err", err)
		return fmt.Sprintf(":x: Could not escalate incident #%d because of an internal error. Please try again.", id)
	case inc.Status == oncall.StatusResolved:
		return fmt.Sprintf("Incident #%d is resolved: there is nothing to escalate. Reopen it first if it is not over.", id)
	}
	log.Info("incident escalated from a slash command")
	if note != "" && !b.addNote(ctx, id, fmt.Sprintf("Note from <@%s> on escalating: %s", user, escape(note))) {
		return fmt.Sprintf("Escalated incident #%d. Your note could not be added to its thread.", id)
	}
	return fmt.Sprintf("Escalated incident #%d.", id)
}

// addNote posts text in the thread of the incident's message, and says
// whether it could.
func (b *Bot) addNote(ctx context.Context, id int64, text string) bool {
	msg, found, err := b.store.SlackMessage(ctx, id)
	if err != nil || !found || msg.TS == "" {
		b.log.Warn("no incident message to add a note to", "incident", id, "found", found, "err", err)
		return false
	}
	if err := b.pacer.wait(ctx, msg.Channel); err != nil {
		b.log.Warn("add a note to the thread of an incident", "incident", id, "err", err)
		return false
	}
	_, _, err = b.api.PostMessageContext(ctx, msg.Channel, slack.MsgOptionText(truncate(text, maxSectionText), false),
		slack.MsgOptionTS(msg.TS))
	if err != nil {
		b.log.Warn("add a note to the thread of an incident", "incident", id, "err", err)
		return false
	}
	return true
}

// textAfter returns text without its first n words, trimmed; the rest
// keeps its spacing and line breaks.
func textAfter(text string, n int) string {
	s := strings.TrimSpace(text)
	for range n {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			return ""
		}
		s = strings.TrimLeftFunc(s[i:], unicode.IsSpace)
	}
	return s
}

// commandName is the slash command as the user typed it.
func commandName(cmd slack.SlashCommand) string {
	return cmp.Or(cmd.Command, "/oncall")
}

// slashReply answers a slash command; the answer rides on the ack.
func slashReply(cmd slack.SlashCommand) map[string]any {
	name := commandName(cmd)
	var text string
	switch sub := strings.ToLower(firstWord(cmd.Text)); sub {
	case "", "help":
		text = helpText(name)
	default:
		text = fmt.Sprintf("Unknown command `%s`. Try `%s help`.", codeSafe(truncate(sub, 50)), name)
	}
	return map[string]any{"response_type": "ephemeral", "text": text}
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func helpText(command string) string {
	return strings.Join([]string{
		"*oncall* pages whoever is on call when your monitoring fires.",
		"",
		"Each incident is posted to its channel with buttons: *Acknowledge* (you are on it), " +
			"*Resolve*, *Escalate* (call for help), *Silence* (page nobody for a while), and " +
			"*Unacknowledge* / *Reopen* / *Unsilence* to undo. Every change is recorded in the message's thread.",
		"",
		"*Commands*",
		"• `" + command + " who [schedule]`: who is on call now, and next",
		"• `" + command + " schedule [schedule]`: the next 7 days of a schedule",
		"• `" + command + " me`: your next shifts",
		"• `" + command + " swap`: give one of your shifts to a colleague, who accepts or declines",
		"• `" + command + " override &lt;schedule&gt; &lt;from&gt; &lt;to&gt;`: take a time range yourself (alone: a dialog)",
		"• `" + command + " overrides [schedule]`: the upcoming overrides, to cancel one",
		"• `" + command + " page &lt;person or schedule&gt; &lt;message&gt;`: page someone now; the incident is posted in this channel",
		"• `" + command + " escalate &lt;incident&gt; [note]`: call for help on an incident, as its *Escalate* button does",
		"• `" + command + " maintenance &lt;integration&gt; &lt;duration&gt;`: show an integration's alerts " +
			"but page nobody for a while (e.g. `2h`, `1d`; at most 7 days); `off` ends it, alone it lists what is in maintenance",
		"• `" + command + " help`: this help",
		"",
		"Times are shown in your Slack time zone; times you type are read in it.",
	}, "\n")
}
