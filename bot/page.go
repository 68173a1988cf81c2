package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// pageMetadataType marks the bot's pages in Slack (payload delivery_key and
// incident_id), so that Find can tell whether a delivery was made.
const pageMetadataType = "oncall_page"

// maxHistoryPages bounds the pages of a conversation's history (of
// historyLimit messages) Find reads.
const maxHistoryPages = 5

// maxPageMessage keeps the source's message in a page short: the page says
// what is wrong, the incident message has the rest.
const maxPageMessage = 500

// Slack's answers to a page that asking again cannot change: the person or
// channel is gone or out of reach, the token lacks a right, or the message
// is one Slack refuses.
var permanentSlackErrors = map[string]bool{
	"channel_not_found": true, "user_not_found": true, "user_disabled": true, "account_inactive": true,
	"is_archived": true, "not_in_channel": true, "cannot_dm_bot": true, "invalid_auth": true, "not_authed": true,
	"missing_scope": true, "restricted_action": true, "msg_too_long": true, "no_text": true, "invalid_blocks": true,
}

// Pager pages through Slack: a person gets a direct message with the
// incident and its Acknowledge and Resolve buttons; a mention target
// (@here, @channel, a user group) gets a post in the incident's channel.
// It is the Slack sender of the escalation engine's deliveries.
//
// Each page carries its delivery's key in its metadata (event_type
// oncall_page), so that Find can tell after a crash whether it was made.
// Errors wrap oncall.ErrPermanent when trying again cannot help; a rate
// limit is a *RetryAfterError; anything else is worth retrying.
type Pager struct{ b *Bot }

// Pager returns the bot's Slack pager.
func (b *Bot) Pager() *Pager { return &Pager{b: b} }

// Send makes the page and returns where it is in Slack: "CHANNEL:TS".
func (p *Pager) Send(ctx context.Context, pg oncall.Page) (string, error) {
	inc, who := pageIncident(pg), pg.Delivery.Person
	if pg.Delivery.Channel != oncall.NotifySlack {
		return "", fmt.Errorf("page %s: %w: the Slack pager cannot page by %q", who, oncall.ErrPermanent, pg.Delivery.Channel)
	}
	channel, err := p.conversation(ctx, pg)
	if err != nil {
		return "", err
	}
	link := p.incidentLink(ctx, inc)

	text, blocks := pageText(inc), pageBlocks(inc, link)
	if isMentionTarget(who) {
		text, blocks = mentionText(inc, who, link), nil
	}
	meta := slack.SlackMetadata{EventType: pageMetadataType,
		EventPayload: map[string]any{"delivery_key": pg.Delivery.Key, "incident_id": inc.ID}}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionMetadata(meta)}
	if blocks != nil {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if err := p.b.pacer.wait(ctx, channel); err != nil {
		return "", fmt.Errorf("page %s in Slack: %w", who, err)
	}
	ch, ts, err := p.b.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return "", pageError(fmt.Sprintf("page %s in Slack conversation %s", who, channel), err)
	}
	p.b.log.Info("paged in Slack", "incident", inc.ID, "delivery", pg.Delivery.Key, "channel", ch, "ts", ts)
	return ch + ":" + ts, nil
}

// Find looks for the page of the delivery among the messages of its
// conversation posted since (less historyLead, for the clocks of Slack and
// this host may differ: the delivery's key tells the page apart anyway).
func (p *Pager) Find(ctx context.Context, pg oncall.Page, since time.Time) (string, bool, error) {
	key := pg.Delivery.Key
	channel, err := p.conversation(ctx, pg)
	if err != nil {
		return "", false, err
	}
	params := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: historyLimit, IncludeAllMetadata: true}
	if !since.IsZero() {
		params.Oldest = slackTS(since.Add(-historyLead))
	}
	for range maxHistoryPages {
		history, err := p.b.api.GetConversationHistoryContext(ctx, params)
		if err != nil {
			return "", false, pageError(fmt.Sprintf("read the history of Slack conversation %s", channel), err)
		}
		for _, m := range history.Messages {
			if m.Metadata.EventType == pageMetadataType && m.Metadata.EventPayload["delivery_key"] == key {
				return channel + ":" + m.Timestamp, true, nil
			}
		}
		if !history.HasMore {
			return "", false, nil
		}
		if params.Cursor = history.ResponseMetaData.NextCursor; params.Cursor == "" {
			return "", false, fmt.Errorf("read the history of Slack conversation %s: Slack said there is more, and gave no cursor to it", channel)
		}
	}
	return "", false, fmt.Errorf("no page of delivery %s in the first %d pages of the history of Slack conversation %s",
		key, maxHistoryPages, channel)
}

// pageIncident is the page's incident, with its id even if the engine left
// the rest out.
func pageIncident(pg oncall.Page) oncall.Incident {
	inc := pg.Incident
	inc.ID = cmp.Or(inc.ID, pg.Delivery.IncidentID)
	return inc
}

// conversation returns where the page goes: the direct message with the
// person, or for a mention target the incident's channel (else the
// channel of its message).
func (p *Pager) conversation(ctx context.Context, pg oncall.Page) (string, error) {
	who := pg.Delivery.Person
	if isMentionTarget(who) {
		if !validMention(who) {
			return "", fmt.Errorf("page %s: %w: not a mention Slack knows (!here, !channel or !subteam^S...)", who, oncall.ErrPermanent)
		}
		channel := pg.Incident.Channel
		if channel == "" {
			msg, _ := p.incidentMessage(ctx, pageIncident(pg))
			channel = msg.Channel
		}
		if channel == "" {
			return "", fmt.Errorf("page %s: %w: incident %d has no Slack channel", who, oncall.ErrPermanent, pageIncident(pg).ID)
		}
		return channel, nil
	}
	user, found, err := p.b.LookupSlackUser(ctx, who)
	if err != nil {
		return "", fmt.Errorf("page %s in Slack: %w", who, err)
	}
	if !found {
		return "", fmt.Errorf("page %s in Slack: %w: no Slack user matches %q (give them a slack: id or an email Slack knows in users:)",
			who, oncall.ErrPermanent, who)
	}
	dm, _, _, err := p.b.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", pageError(fmt.Sprintf("page %s: open a direct message with Slack user %s", who, user), err)
	}
	return dm.ID, nil
}

// incidentMessage returns the incident's message in Slack; posted is false
// while it is not known to be there. A failure to tell is logged: the page
// goes out without the link.
func (p *Pager) incidentMessage(ctx context.Context, inc oncall.Incident) (msg storage.SlackMessage, posted bool) {
	m, found, err := p.b.store.SlackMessage(ctx, inc.ID)
	if err != nil {
		p.b.log.Warn("cannot tell where the message of a paged incident is", "incident", inc.ID, "err", err)
		return storage.SlackMessage{}, false
	}
	return m, found && m.TS != ""
}

// incidentLink is how a page points at the incident: a link to its
// message, else its channel, else nothing. A failure to get the link only
// costs the link.
func (p *Pager) incidentLink(ctx context.Context, inc oncall.Incident) incidentLink {
	msg, posted := p.incidentMessage(ctx, inc)
	channel := cmp.Or(inc.Channel, msg.Channel)
	if !posted {
		return incidentLink{Channel: channel}
	}
	url, err := p.b.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: msg.Channel, Ts: msg.TS})
	if err != nil {
		p.b.log.Warn("page without a link to the incident message", "incident", inc.ID, "err", err)
		return incidentLink{Channel: channel}
	}
	safe, _ := safeURL(url)
	return incidentLink{Channel: channel, URL: safe}
}

// incidentLink points at an incident's message: its URL, or only its
// channel; either may be empty.
type incidentLink struct{ Channel, URL string }

// pageText is the text of a page by direct message: what the notification
// shows.
func pageText(inc oncall.Incident) string {
	return truncate(fmt.Sprintf("You are paged: #%d [%s] %s", inc.ID, severityName(inc.Severity), escape(titleOf(inc))), maxSectionText)
}

// pageBlocks renders a page by direct message: the incident in short, where
// it is, and the buttons of the incident message (same action ids and
// values, so a click here does what it does there).
func pageBlocks(inc oncall.Incident, link incidentLink) []slack.Block {
	name := fmt.Sprintf("#%d %s", inc.ID, escape(truncate(titleOf(inc), maxHeaderText)))
	switch {
	case link.URL != "":
		name = "<" + link.URL + "|" + name + ">"
	case link.Channel != "":
		name += " in <#" + link.Channel + ">"
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(markdown(headerEmoji(inc)+" *You are paged:* "+name), nil, nil, slack.SectionBlockOptionBlockID("page")),
	}
	if msg := strings.TrimSpace(inc.Message); msg != "" {
		blocks = append(blocks, slack.NewSectionBlock(markdown(escape(truncate(msg, maxPageMessage))), nil, nil,
			slack.SectionBlockOptionBlockID("message")))
	}
	id := strconv.FormatInt(inc.ID, 10)
	ack := slack.NewButtonBlockElement(ActionIDAcknowledge, id, plain("Acknowledge"))
	ack.Style = slack.StylePrimary
	resolve := slack.NewButtonBlockElement(ActionIDResolve, id, plain("Resolve"))
	return append(blocks,
		slack.NewContextBlock("summary", markdown(summaryLine(inc))),
		slack.NewActionBlock("actions", ack, resolve))
}

// mentionText is a page of a mention target: a top-level post in the
// incident's channel, for a mention in a thread notifies nobody.
func mentionText(inc oncall.Incident, target string, link incidentLink) string {
	name := fmt.Sprintf("Incident #%d", inc.ID)
	if link.URL != "" {
		name = "<" + link.URL + "|" + name + ">"
	}
	return truncate(fmt.Sprintf("<%s> %s needs someone: %s", target, name, escape(titleOf(inc))), maxSectionText)
}

func isMentionTarget(person string) bool { return strings.HasPrefix(person, "!") }

var usergroupID = regexp.MustCompile(`^S[A-Z0-9]+$`)

// validMention says whether a mention target is one Slack knows.
func validMention(target string) bool {
	if target == oncall.MentionHere || target == oncall.MentionChannel {
		return true
	}
	group, ok := strings.CutPrefix(target, oncall.MentionUsergroupPrefix)
	return ok && usergroupID.MatchString(group)
}

// pageError wraps a Slack error of a page with what was being done: a
// refusal that asking again cannot change wraps oncall.ErrPermanent, a
// rate limit is a *RetryAfterError, the rest may pass if tried again.
func pageError(doing string, err error) error {
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok && permanentSlackErrors[se.Err] {
		return fmt.Errorf("%s: %w: %w", doing, oncall.ErrPermanent, err)
	}
	return slackError(doing, err)
}

// pageCommand answers /oncall page <person or schedule> <message>: it
// opens an incident in the command's channel that pages the person (their
// personal plan) or whoever is on call for the schedule, by queueing an
// alert batch of the integration "slack". The batch's id is the command's
// trigger id, so an envelope Slack delivers again opens one incident.
// Bad input is answered on the ack; the rest needs Slack and the queue,
// and is answered after it.
func (b *Bot) pageCommand(cmd slack.SlashCommand) (reply any, work func(context.Context)) {
	name := commandName(cmd)
	usage := fmt.Sprintf("Usage: `%s page <person or schedule> <message>`, e.g. `%s page @alice checkout is down` "+
		"or `%s page primary checkout is down`.", name, name, name)
	_, args := splitCommand(cmd.Text)
	switch {
	case b.alerts == nil:
		return ephemeralReply("Paging from Slack is unavailable: this oncall runs without its alert queue."), nil
	case len(args) < 2:
		return ephemeralReply(usage), nil
	case cmd.UserID == "" || cmd.TriggerID == "" || cmd.ChannelID == "":
		b.log.Warn("slash command without a user, a trigger id or a channel", "command", "page")
		return ephemeralReply(":x: Slack sent this command incomplete. Please try again."), nil
	case strings.HasPrefix(cmd.ChannelID, "D"):
		return ephemeralReply(fmt.Sprintf("Run `%s page` in a channel: the incident is posted where you run it.", name)), nil
	}
	return nil, func(ctx context.Context) {
		b.respond(ctx, cmd.ResponseURL, b.page(ctx, cmd, args, usage))
	}
}

// page queues the incident of /oncall page and returns the answer.
func (b *Bot) page(ctx context.Context, cmd slack.SlashCommand, args []string, usage string) string {
	target, words, problem := b.pageTarget(ctx, args)
	if problem != "" {
		return problem
	}
	message := textAfter(cmd.Text, 1+words)
	if message == "" {
		return usage
	}
	now := b.now().UTC()
	labels := map[string]string{"paged_by": cmd.UserID, "target": target.ref}
	batch := oncall.AlertBatch{
		ID:          "page-" + cmd.TriggerID,
		Integration: "slack",
		Kind:        "page",
		ReceivedAt:  now,
		GroupKey:    "page:" + cmd.TriggerID,
		Status:      oncall.AlertFiring,
		Title:       message,
		Severity:    oncall.SeverityCritical,
		Labels:      labels,
		Channel:     cmd.ChannelID,
		Escalation:  target.escalation,
		Alerts: []oncall.Alert{{
			Fingerprint: "page:" + cmd.TriggerID,
			Status:      oncall.AlertFiring,
			Title:       message,
			Severity:    oncall.SeverityCritical,
			Labels:      labels,
			StartsAt:    now,
		}},
	}
	if err := b.alerts.PublishAlert(ctx, batch); err != nil {
		b.log.Error("queue the incident of /oncall page", "batch", batch.ID, "user", cmd.UserID, "err", err)
		return ":x: Could not page because of an internal error. Please try again."
	}
	b.log.Info("page from Slack queued", "batch", batch.ID, "user", cmd.UserID, "escalation", batch.Escalation)
	return fmt.Sprintf("Paging %s: %s. The incident will appear in <#%s>.", target.shown,
		escape(truncate(strings.TrimRight(message, ". "), maxPageMessage)), cmd.ChannelID)
}

// pageTarget is whom /oncall page pages.
type pageTarget struct {
	ref        string // as the command names them
	escalation string // page:user:<person> or page:schedule:<name>
	shown      string // in the answer, mrkdwn
}

// pageTarget reads whom /oncall page pages from the first words of its
// arguments: a schedule by its name (which may have spaces), else a person
// Slack knows. It returns how many words named them, or the answer when
// nobody matches.
func (b *Bot) pageTarget(ctx context.Context, args []string) (pageTarget, int, string) {
	schedules := b.knownSchedules()
	found, words := "", 0
	for _, s := range schedules {
		nameWords := strings.Fields(s)
		n := len(nameWords)
		if n > words && n <= len(args) && strings.EqualFold(strings.Join(args[:n], " "), strings.Join(nameWords, " ")) {
			found, words = s, n
		}
	}
	if found != "" {
		return pageTarget{ref: found, escalation: "page:schedule:" + found,
			shown: "whoever is on call for *" + escape(found) + "*"}, words, ""
	}

	ref := args[0]
	id, ok, err := b.LookupSlackUser(ctx, ref)
	if err != nil {
		b.log.Warn("look up the person of /oncall page", "person", ref, "err", err)
		return pageTarget{}, 0, fmt.Sprintf(":x: Could not look up `%s` in Slack right now. Please try again.", codeSafe(truncate(ref, 50)))
	}
	if !ok {
		text := fmt.Sprintf("`%s` is not a Slack user oncall knows, nor a schedule. Name a person as @handle, "+
			"a mention or an email", codeSafe(truncate(ref, 50)))
		if len(schedules) > 0 {
			quoted := make([]string, len(schedules))
			for i, s := range schedules {
				quoted[i] = "`" + codeSafe(s) + "`"
			}
			return pageTarget{}, 0, text + "; schedules: " + strings.Join(quoted, ", ") + "."
		}
		return pageTarget{}, 0, text + "."
	}
	// The engine finds the person's plan by how the config names them.
	person := b.sched.people.personFor(ctx, id)
	return pageTarget{ref: ref, escalation: "page:user:" + person, shown: "<@" + id + ">"}, 1, ""
}

// knownSchedules returns the names of the schedules the bot knows, sorted:
// those of its Schedules and of its ScheduleChannels.
func (b *Bot) knownSchedules() []string {
	var names []string
	if b.sched.schedules != nil {
		names = append(names, b.sched.schedules.Schedules()...)
	}
	for name := range b.sched.channels {
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
