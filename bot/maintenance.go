package bot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// MaintenanceStore keeps the maintenance windows started by /oncall
// maintenance (storage.DB). A window whose end is past is over.
type MaintenanceStore interface {
	StartMaintenance(ctx context.Context, integration string, until time.Time, by oncall.Actor) error
	Maintenance(ctx context.Context, now time.Time) ([]storage.MaintenanceWindow, error)
}

// maxMaintenance is the longest maintenance /oncall maintenance starts:
// a longer one is better written in the config, where it shows.
const maxMaintenance = 7 * 24 * time.Hour

// maintenanceCommand answers /oncall maintenance: alone, the integrations
// in maintenance; with an integration and a duration (Go's, or days: 2h,
// 90m, 1d, 1d12h), it puts the integration in maintenance for that long;
// with "off", it ends its maintenance. Anyone may: the integration's
// channel is told who did. Bad input is answered on the ack; the rest
// needs the database, and is answered after it.
func (b *Bot) maintenanceCommand(cmd slack.SlashCommand) (reply any, work func(context.Context)) {
	name := commandName(cmd)
	usage := fmt.Sprintf("Usage: `%s maintenance &lt;integration&gt; &lt;duration&gt;` (e.g. `2h`, `1d`; at most 7 days), "+
		"`%s maintenance &lt;integration&gt; off`, or `%s maintenance` for the integrations in maintenance.", name, name, name)
	_, args := splitCommand(cmd.Text)
	if b.maintenance == nil {
		return ephemeralReply("Maintenance from Slack is unavailable: this oncall runs without its database."), nil
	}
	if len(args) == 0 {
		return nil, func(ctx context.Context) { b.respond(ctx, cmd.ResponseURL, b.listMaintenance(ctx, name)) }
	}
	if len(args) != 2 {
		return ephemeralReply(usage), nil
	}
	integration, ok := b.integration(args[0])
	if !ok {
		return ephemeralReply(b.unknownIntegration(args[0])), nil
	}
	if cmd.UserID == "" {
		b.log.Warn("slash command without a user", "command", "maintenance")
		return ephemeralReply(":x: Slack sent this command incomplete. Please try again."), nil
	}
	if strings.EqualFold(args[1], "off") {
		return nil, func(ctx context.Context) {
			b.respond(ctx, cmd.ResponseURL, b.endMaintenance(ctx, cmd.UserID, integration))
		}
	}
	span, err := parseSpan(args[1])
	switch {
	case err != nil:
		return ephemeralReply(fmt.Sprintf("`%s` is not a duration. %s", codeSafe(truncate(args[1], 50)), usage)), nil
	case span < time.Minute:
		return ephemeralReply("A maintenance lasts at least a minute. " + usage), nil
	case span > maxMaintenance:
		return ephemeralReply(fmt.Sprintf("A maintenance from Slack lasts at most 7 days; for a longer one, add it to "+
			"the integration's `maintenance:` in the config. %s", usage)), nil
	}
	return nil, func(ctx context.Context) {
		b.respond(ctx, cmd.ResponseURL, b.startMaintenance(ctx, cmd.UserID, integration, span, name))
	}
}

// parseSpan reads a duration as Go does (90m, 2h30m), with days in front
// if any (1d, 1d12h).
func parseSpan(s string) (time.Duration, error) {
	s = strings.ToLower(s)
	var days time.Duration
	if d, rest, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 1000 {
			return 0, fmt.Errorf("bad number of days %q", d)
		}
		days, s = time.Duration(n)*24*time.Hour, rest
		if s == "" {
			return days, nil
		}
	}
	span, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if span < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return days + span, nil
}

// integration returns the configured name of the integration the user
// named, matched regardless of case.
func (b *Bot) integration(name string) (string, bool) {
	i := slices.IndexFunc(b.integrations, func(n string) bool { return strings.EqualFold(n, name) })
	if i < 0 {
		return "", false
	}
	return b.integrations[i], true
}

func (b *Bot) unknownIntegration(name string) string {
	if len(b.integrations) == 0 {
		return "No integrations are configured. Add `integrations:` to the oncall config."
	}
	quoted := make([]string, len(b.integrations))
	for i, n := range b.integrations {
		quoted[i] = "`" + codeSafe(n) + "`"
	}
	return fmt.Sprintf("Unknown integration `%s`. Integrations: %s.", codeSafe(truncate(name, 50)), strings.Join(quoted, ", "))
}

// startMaintenance puts the integration in maintenance for span, tells
// its channel, and returns the answer.
func (b *Bot) startMaintenance(ctx context.Context, user, integration string, span time.Duration, command string) string {
	until := b.now().Add(span).UTC().Truncate(time.Second)
	if err := b.maintenance.StartMaintenance(ctx, integration, until, oncall.SlackActor(user)); err != nil {
		b.log.Error("start a maintenance from Slack", "integration", integration, "user", user, "err", err)
		return fmt.Sprintf(":x: Could not put `%s` in maintenance because of an internal error. Please try again.",
			codeSafe(integration))
	}
	b.log.Info("maintenance started from Slack", "integration", integration, "user", user, "until", until)
	b.postToIntegration(ctx, integration, fmt.Sprintf(
		"<@%s> put *%s* in maintenance %s: its alerts are shown, nobody is paged.", user, escape(integration), untilText(until)))
	return fmt.Sprintf("*%s* is in maintenance %s: its alerts are shown, nobody is paged. End it sooner with `%s maintenance %s off`.",
		escape(integration), untilText(until), command, codeSafe(integration))
}

// endMaintenance ends the integration's maintenance from Slack, tells its
// channel, and returns the answer.
func (b *Bot) endMaintenance(ctx context.Context, user, integration string) string {
	now := b.now().UTC()
	windows, err := b.maintenance.Maintenance(ctx, now)
	if err == nil && !slices.ContainsFunc(windows, func(w storage.MaintenanceWindow) bool { return w.Integration == integration }) {
		return fmt.Sprintf("*%s* is not in maintenance from Slack: there is nothing to end. "+
			"(A window in the config ends when the config says.)", escape(integration))
	}
	if err == nil {
		err = b.maintenance.StartMaintenance(ctx, integration, now, oncall.SlackActor(user))
	}
	if err != nil {
		b.log.Error("end a maintenance from Slack", "integration", integration, "user", user, "err", err)
		return fmt.Sprintf(":x: Could not end the maintenance of `%s` because of an internal error. Please try again.",
			codeSafe(integration))
	}
	b.log.Info("maintenance ended from Slack", "integration", integration, "user", user)
	b.postToIntegration(ctx, integration, fmt.Sprintf(
		"<@%s> ended the maintenance of *%s*: new incidents page again (one opened during the maintenance stays quiet: Escalate it to page).", user, escape(integration)))
	return fmt.Sprintf("Ended the maintenance of *%s*: new incidents page again; one opened during the maintenance stays quiet (Escalate it to page).", escape(integration))
}

// listMaintenance returns the answer to /oncall maintenance alone.
func (b *Bot) listMaintenance(ctx context.Context, command string) string {
	windows, err := b.maintenance.Maintenance(ctx, b.now().UTC())
	if err != nil {
		b.log.Error("list the maintenance windows", "err", err)
		return ":x: Could not read the maintenance windows because of an internal error. Please try again."
	}
	if len(windows) == 0 {
		return fmt.Sprintf("No integration is in maintenance from Slack. Start one with "+
			"`%s maintenance &lt;integration&gt; &lt;duration&gt;`.", command)
	}
	lines := []string{"*In maintenance* (alerts are shown, nobody is paged):"}
	for _, w := range windows {
		lines = append(lines, fmt.Sprintf("• *%s* %s, started by %s", escape(w.Integration), untilText(w.Until),
			actorText(w.StartedBy, "")))
	}
	return truncate(strings.Join(lines, "\n"), maxMessageText)
}

// postToIntegration posts a note in the integration's channel, if it has
// one. A failure is logged: the note is a courtesy.
func (b *Bot) postToIntegration(ctx context.Context, integration, text string) {
	channel := b.integrationChannels[integration]
	if channel == "" {
		return
	}
	b.postToChannel(ctx, channel, text, "integration", integration)
}

// postToChannel posts text in the channel, paced, and logs a failure with
// the attributes given.
func (b *Bot) postToChannel(ctx context.Context, channel, text string, logAttrs ...any) {
	err := b.pacer.wait(ctx, channel)
	if err == nil {
		_, _, err = b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(truncate(text, maxSectionText), false))
	}
	if err != nil {
		b.log.Warn("post a note in a Slack channel", append(logAttrs, "channel", channel, "err", err)...)
	}
}

// RateLimitNotice tells the integration's channel that its alerts are
// refused beyond the rate limit of perMinute requests a minute. Call it
// once in a while (it posts each time); it returns when Slack has
// answered, and logs a failure.
func (b *Bot) RateLimitNotice(ctx context.Context, in oncall.Integration, perMinute int) {
	if in.Channel == "" {
		b.log.Warn("an integration over its rate limit has no Slack channel to tell", "integration", in.Name)
		return
	}
	b.postToChannel(ctx, in.Channel, fmt.Sprintf(":warning: *%s* is sending more than %s a minute: requests beyond that "+
		"are refused with 429 and retried by the sender; alerts already accepted are kept.",
		escape(in.Name), plural(perMinute, "alert")), "integration", in.Name)
}
