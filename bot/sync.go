package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// RetryAfterError asks to try again after RetryAfter: Slack's rate limit
// (its Retry-After), or an update held back to coalesce the updates of a
// busy incident.
type RetryAfterError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryDelay tells the queue how long to wait before the retry.
func (e *RetryAfterError) RetryDelay() time.Duration { return e.RetryAfter }

// updateInterval is the shortest time between two updates of an incident's
// message that change neither its status nor its escalations: an alert
// storm joining one incident changes its counts with every batch, and
// Slack rate-limits chat.update.
const updateInterval = 3 * time.Second

// The channel history searched for a message whose ts was not saved: the
// newest historyLimit messages since historyLead before the incident was
// created.
const (
	historyLimit = 200
	historyLead  = time.Minute
)

// maxReplyPages bounds the pages of a thread (of historyLimit replies)
// searched for a reply whose ts was not saved.
const maxReplyPages = 5

// SyncIncident brings the incident's Slack message up to date: it posts the
// message if there is none yet, posts a thread reply for each new event,
// then updates the message if what it shows has changed. Replicas may call
// it for the same incident at once; a lock on the incident serializes them.
//
// A post is claimed in the database before chat.postMessage: a message
// saved without a ts, an event's thread reply marked claimed. A sync that
// finds a claim looks for the post by its metadata before it posts again
// (the message in the channel's recent history, the reply in the message's
// thread), so a crash between a post and saving its ts does not post it
// twice.
//
// Updates of a busy incident are coalesced: one that changes neither the
// status nor the escalations (counts, labels, the source's message), and
// does not come with a silence or its end, waits until updateInterval has
// passed since the message was last posted or updated; sooner, SyncIncident returns a *RetryAfterError for the rest of
// the interval, and the retry shows the latest state. Thread replies are
// never held back by this. Posts to a channel are paced to Slack's limit
// of about one a second.
//
// Slack errors are returned for the caller to retry; a rate limit is a
// *RetryAfterError. Work already done is kept, so a retry goes on from
// where this call stopped.
func (b *Bot) SyncIncident(ctx context.Context, id int64) error {
	return b.store.WithIncidentLock(ctx, id, func(ctx context.Context) error {
		return b.syncIncident(ctx, id)
	})
}

func (b *Bot) syncIncident(ctx context.Context, id int64) error {
	inc, err := b.store.Incident(ctx, id)
	if errors.Is(err, oncall.ErrNotFound) {
		b.log.Warn("cannot sync a missing incident to Slack", "incident", id)
		return nil // nothing a retry could change
	}
	if err != nil {
		return fmt.Errorf("sync incident %d: %w", id, err)
	}
	msg, found, err := b.store.SlackMessage(ctx, id)
	if err != nil {
		return fmt.Errorf("sync incident %d: %w", id, err)
	}
	if !found && inc.Channel == "" {
		b.log.Warn("incident has no Slack channel; not posted", "incident", id, "integration", inc.Integration)
		return nil
	}
	switch {
	case !found:
		msg, err = b.postMessage(ctx, inc, msg)
	case msg.TS == "":
		msg, err = b.recoverMessage(ctx, inc, msg)
	}
	if err != nil {
		return err
	}
	msg, silenceChanged, err := b.postEvents(ctx, inc, msg)
	if err != nil {
		return err
	}
	return b.updateMessage(ctx, inc, msg, silenceChanged)
}

// postMessage posts the incident's message to its channel (or, if it has
// none any more, to the channel of the message it replaces) and saves it.
// The post is claimed first, so that a sync after a crash in between knows
// to look for the message before posting again.
func (b *Bot) postMessage(ctx context.Context, inc oncall.Incident, old storage.SlackMessage) (storage.SlackMessage, error) {
	channel := cmp.Or(inc.Channel, old.Channel)
	now := b.now()
	text, blocks := IncidentText(inc), RenderIncident(inc, now)
	hash, err := messageHash(text, blocks)
	if err != nil {
		return old, fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	if err := b.pacer.wait(ctx, channel); err != nil {
		return old, fmt.Errorf("post incident %d: %w", inc.ID, err)
	}
	claim := storage.SlackMessage{IncidentID: inc.ID, Channel: channel}
	if err := b.store.SaveSlackMessage(ctx, claim); err != nil {
		return old, fmt.Errorf("claim the Slack post of incident %d: %w", inc.ID, err)
	}

	meta := slack.SlackMetadata{EventType: metadataEventType, EventPayload: map[string]any{"incident_id": inc.ID}}
	var posted storage.SlackMessage
	err = b.send(ctx, inc, now, blocks, func(blocks []slack.Block) error {
		ch, ts, err := b.api.PostMessageContext(ctx, channel,
			slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...), slack.MsgOptionMetadata(meta))
		posted = storage.SlackMessage{IncidentID: inc.ID, Channel: ch, TS: ts}
		return err
	})
	if err != nil {
		return claim, slackError(fmt.Sprintf("post incident %d to Slack channel %s", inc.ID, channel), err)
	}
	msg := shown(posted, inc, hash, now)
	if err := b.store.SaveSlackMessage(ctx, msg); err != nil {
		return claim, fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	b.log.Info("incident posted to Slack", "incident", inc.ID, "channel", msg.Channel, "ts", msg.TS)
	return msg, nil
}

// recoverMessage resolves a claimed post: an earlier sync was about to post
// the message, and may have. If the channel's history has it, its ts is
// saved (what it shows is unknown, so the update that follows renders it
// again); otherwise the message is posted. A failure to read the history
// posts too: a message shown twice is better than none.
func (b *Bot) recoverMessage(ctx context.Context, inc oncall.Incident, claim storage.SlackMessage) (storage.SlackMessage, error) {
	ts, err := b.findPosted(ctx, inc, claim.Channel)
	if err != nil {
		b.log.Warn("cannot tell whether an interrupted sync posted the incident; posting it", "incident", inc.ID,
			"channel", claim.Channel, "err", err)
	}
	if ts == "" {
		return b.postMessage(ctx, inc, claim)
	}
	msg := storage.SlackMessage{IncidentID: inc.ID, Channel: claim.Channel, TS: ts}
	if err := b.store.SaveSlackMessage(ctx, msg); err != nil {
		return claim, fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	b.log.Info("found the incident message an interrupted sync posted", "incident", inc.ID, "channel", msg.Channel, "ts", ts)
	return msg, nil
}

// findPosted returns the ts of the incident's message in the channel's
// recent history, "" if it is not there.
func (b *Bot) findPosted(ctx context.Context, inc oncall.Incident, channel string) (string, error) {
	params := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: historyLimit, IncludeAllMetadata: true}
	if !inc.CreatedAt.IsZero() {
		params.Oldest = slackTS(inc.CreatedAt.Add(-historyLead))
	}
	history, err := b.api.GetConversationHistoryContext(ctx, params)
	if err != nil {
		return "", slackError(fmt.Sprintf("read the history of Slack channel %s", channel), err)
	}
	for _, m := range history.Messages {
		if m.ThreadTimestamp == "" || m.ThreadTimestamp == m.Timestamp {
			if isIncidentMessage(m.Metadata, inc.ID) {
				return m.Timestamp, nil
			}
		}
	}
	return "", nil
}

// isIncidentMessage says whether a message's metadata marks it as the
// message of the incident.
func isIncidentMessage(meta slack.SlackMetadata, id int64) bool {
	return meta.EventType == metadataEventType && payloadIDIs(meta.EventPayload["incident_id"], id)
}

// payloadIDIs says whether an id read from a metadata payload is id.
func payloadIDIs(v any, id int64) bool {
	switch v := v.(type) {
	case float64: // JSON numbers; ids stay below 2^53
		return v == float64(id)
	case string:
		return v == strconv.FormatInt(id, 10)
	}
	return false
}

// slackTS formats t as a Slack timestamp.
func slackTS(t time.Time) string {
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

// updateMessage updates the incident's message if what it shows has
// changed, coalescing updates that change neither the status, the
// escalations nor the silence (see SyncIncident). A message deleted in
// Slack is posted again.
func (b *Bot) updateMessage(ctx context.Context, inc oncall.Incident, msg storage.SlackMessage, silenceChanged bool) error {
	now := b.now()
	text, blocks := IncidentText(inc), RenderIncident(inc, now)
	hash, err := messageHash(text, blocks)
	if err != nil {
		return fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	if msg.Hash == hash {
		return nil
	}
	if !silenceChanged && msg.Status == inc.Status && msg.Escalations == inc.Escalations {
		if wait := msg.ShownAt.Add(updateInterval).Sub(now); wait > 0 {
			return &RetryAfterError{
				RetryAfter: min(wait, updateInterval), // a clock that went back waits no longer
				Err:        fmt.Errorf("update of the Slack message of incident %d held back to coalesce updates", inc.ID),
			}
		}
	}
	err = b.send(ctx, inc, now, blocks, func(blocks []slack.Block) error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, msg.Channel, msg.TS,
			slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if slackErrorIs(err, "message_not_found") || slackErrorIs(err, "cant_update_message") {
		b.log.Warn("incident message gone from Slack; posting it again", "incident", inc.ID, "ts", msg.TS, "err", err)
		_, err := b.postMessage(ctx, inc, msg)
		return err
	}
	if err != nil {
		return slackError(fmt.Sprintf("update Slack message of incident %d", inc.ID), err)
	}
	if err := b.store.SaveSlackMessage(ctx, shown(msg, inc, hash, now)); err != nil {
		return fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	return nil
}

// shown is msg as it shows inc (rendered to hash) from now on.
func shown(msg storage.SlackMessage, inc oncall.Incident, hash string, now time.Time) storage.SlackMessage {
	msg.Hash, msg.Status, msg.Escalations, msg.ShownAt = hash, inc.Status, inc.Escalations, now
	return msg
}

// send calls Slack with the incident's blocks, rendered at now. Slack
// refuses a message whose image it cannot fetch (invalid_blocks); the
// message is then sent again without the image rather than not at all.
func (b *Bot) send(ctx context.Context, inc oncall.Incident, now time.Time, blocks []slack.Block,
	call func(blocks []slack.Block) error) error {
	err := call(blocks)
	if inc.ImageURL == "" || !slackErrorIs(err, "invalid_blocks") {
		return err
	}
	b.log.Warn("Slack refused the incident message; sending it without the image", "incident", inc.ID, "err", err)
	return call(renderIncident(inc, now, false))
}

// postEvents posts a thread reply for each event not yet posted, and marks
// every event posted (those that need no reply too). A thread whose message
// was deleted in Slack gets a new message. It returns the message the
// thread is under, and whether the events silenced or unsilenced the
// incident: the message's controls change, to be shown at once.
//
// Each reply is claimed in the database before chat.postMessage, and
// carries its event in its metadata (event_type oncall_event). A sync that
// finds a claimed event looks for its reply in the thread before it posts,
// so a crash between the post and saving its ts does not post the reply
// twice.
func (b *Bot) postEvents(ctx context.Context, inc oncall.Incident, msg storage.SlackMessage) (
	_ storage.SlackMessage, silenceChanged bool, _ error) {
	events, err := b.store.UnpostedEvents(ctx, inc.ID)
	if err != nil {
		return msg, false, fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	for _, ev := range events {
		ts := msg.TS
		if text, ok := eventText(inc, ev.Event, b.targetText(ctx, ev.Target)); ok {
			if msg, ts, err = b.replyOnce(ctx, inc, msg, ev, text); err != nil {
				return msg, false, err
			}
		}
		if err := b.store.MarkEventPosted(ctx, ev.ID, ts); err != nil {
			return msg, false, fmt.Errorf("sync incident %d: %w", inc.ID, err)
		}
		silenceChanged = silenceChanged || ev.Kind == oncall.EventSilenced || ev.Kind == oncall.EventUnsilenced
	}
	return msg, silenceChanged, nil
}

// replyOnce returns the ts of the event's thread reply: the one an
// interrupted sync posted for a claimed event, if the thread has it, else
// a new one. A failure to read the thread posts: a reply shown twice is
// better than none. It returns the message the thread is under, posted
// again if it was deleted in Slack.
func (b *Bot) replyOnce(ctx context.Context, inc oncall.Incident, msg storage.SlackMessage, ev storage.UnpostedEvent,
	text string) (storage.SlackMessage, string, error) {
	if ev.Claimed {
		ts, err := b.findReply(ctx, msg, ev.Event)
		if err != nil {
			b.log.Warn("cannot tell whether an interrupted sync posted the thread reply of an event; posting it",
				"incident", inc.ID, "event", ev.ID, "kind", ev.Kind, "err", err)
		}
		if ts != "" {
			b.log.Info("found the thread reply an interrupted sync posted", "incident", inc.ID, "event", ev.ID, "ts", ts)
			return msg, ts, nil
		}
	}
	ts, err := b.postReply(ctx, msg, ev.Event, text)
	if slackErrorIs(err, "thread_not_found") {
		b.log.Warn("incident message gone from Slack; posting it again", "incident", inc.ID, "ts", msg.TS)
		if msg, err = b.postMessage(ctx, inc, msg); err != nil {
			return msg, "", err
		}
		ts, err = b.postReply(ctx, msg, ev.Event, text)
	}
	if err != nil {
		return msg, "", slackError(fmt.Sprintf("post %s event %d of incident %d to Slack", ev.Kind, ev.ID, inc.ID), err)
	}
	return msg, ts, nil
}

// findReply returns the ts of the event's reply in the thread of msg, ""
// if it is not there. It reads the replies posted since historyLead before
// the event, at most maxReplyPages pages of them.
func (b *Bot) findReply(ctx context.Context, msg storage.SlackMessage, ev oncall.Event) (string, error) {
	params := &slack.GetConversationRepliesParameters{ChannelID: msg.Channel, Timestamp: msg.TS, Limit: historyLimit,
		IncludeAllMetadata: true}
	if !ev.At.IsZero() {
		params.Oldest = slackTS(ev.At.Add(-historyLead))
	}
	for range maxReplyPages {
		replies, more, cursor, err := b.api.GetConversationRepliesContext(ctx, params)
		if err != nil {
			return "", slackError(fmt.Sprintf("read the thread of message %s in Slack channel %s", msg.TS, msg.Channel), err)
		}
		for _, m := range replies {
			if m.Timestamp != msg.TS && isEventReply(m.Metadata, ev.ID) {
				return m.Timestamp, nil
			}
		}
		if !more || cursor == "" {
			return "", nil
		}
		params.Cursor = cursor
	}
	return "", fmt.Errorf("no reply of event %d in the first %d pages of the thread of message %s in Slack channel %s",
		ev.ID, maxReplyPages, msg.TS, msg.Channel)
}

// isEventReply says whether a message's metadata marks it as the thread
// reply of the event.
func isEventReply(meta slack.SlackMetadata, eventID int64) bool {
	return meta.EventType == eventMetadataType && payloadIDIs(meta.EventPayload["event_id"], eventID)
}

// postReply posts an event's thread reply under msg and returns its ts.
// The reply is claimed first (see postEvents).
func (b *Bot) postReply(ctx context.Context, msg storage.SlackMessage, ev oncall.Event, text string) (string, error) {
	if err := b.pacer.wait(ctx, msg.Channel); err != nil {
		return "", err
	}
	if err := b.store.ClaimEventPost(ctx, ev.ID); err != nil {
		return "", err
	}
	meta := slack.SlackMetadata{EventType: eventMetadataType,
		EventPayload: map[string]any{"incident_id": ev.IncidentID, "event_id": ev.ID}}
	_, ts, err := b.api.PostMessageContext(ctx, msg.Channel, slack.MsgOptionText(text, false),
		slack.MsgOptionTS(msg.TS), slack.MsgOptionMetadata(meta))
	return ts, err
}

// eventText is the thread reply for an event; false for events that need
// none (the message itself shows them). target names whom a paging event
// is about, in mrkdwn (targetText).
func eventText(inc oncall.Incident, ev oncall.Event, target string) (string, bool) {
	who := actorText(ev.Actor, inc.Kind)
	note := ev.Note
	var text string
	switch ev.Kind {
	case oncall.EventPaged:
		text = "Paged " + target + byChannel(ev.Channel)
	case oncall.EventPageDelivered:
		switch ev.Channel {
		case oncall.NotifyCall:
			text = "Call to " + target + " answered"
		case oncall.NotifySMS:
			text = "SMS to " + target + " delivered"
		default:
			text = "Slack message to " + target + " delivered"
		}
	case oncall.EventPageFailed:
		text = "Could not page " + target + byChannel(ev.Channel)
	case oncall.EventEscalationStep:
		text = "No acknowledgement yet"
	case oncall.EventAcknowledged:
		text = "Acknowledged by " + who
	case oncall.EventUnacknowledged:
		text = "Unacknowledged by " + who
	case oncall.EventResolved:
		text = "Resolved by " + who
	case oncall.EventReopened:
		text = "Reopened by " + who
	case oncall.EventEscalated:
		// The chain pages whoever is next; without one, the channel is
		// all there is to tell.
		text = "Escalated by " + who
		if inc.Escalation == "" {
			text = "<!here> " + text
			if ev.Note == "" {
				text += ": no escalation chain for this incident"
			}
		}
	case oncall.EventNote:
		if note == "" {
			return "", false
		}
		text = "Note"
		if ev.Actor != oncall.ActorSystem && ev.Actor != "" {
			text += " from " + who
		}
	case oncall.EventSilenced:
		text = "Silenced by " + who
		if until, ok := silencedUntil(note); ok {
			text += " " + untilText(until)
			note = ""
		}
	case oncall.EventUnsilenced:
		text = "Unsilenced by " + who
	default:
		return "", false
	}
	if note != "" {
		text += ": " + escape(note)
	}
	return truncate(text, maxSectionText), true
}

// byChannel says how someone was paged: " by SMS".
func byChannel(c oncall.NotifyChannel) string {
	if c == "" {
		return ""
	}
	return " by " + escape(c.Name())
}

// targetText names whom a paging event is about: a Slack mention of a
// person Slack knows, else the reference as the chain or schedule named
// them. Channel-wide mentions are shown without notifying anyone again.
func (b *Bot) targetText(ctx context.Context, target string) string {
	return targetName(target, func(person string) (string, bool) { return b.SlackUser(ctx, person) })
}

// targetName is targetText with slackUser to resolve a person.
func targetName(target string, slackUser func(person string) (string, bool)) string {
	switch {
	case target == "":
		return "someone"
	case target == oncall.MentionHere:
		return "@here"
	case target == oncall.MentionChannel:
		return "@channel"
	case strings.HasPrefix(target, oncall.MentionUsergroupPrefix):
		return "the user group " + escape(strings.TrimPrefix(target, oncall.MentionUsergroupPrefix))
	}
	if id, ok := slackUser(target); ok && isSlackID(id) {
		return "<@" + id + ">"
	}
	return escape(target)
}

// slackError wraps a Slack error with what was being done; a rate limit
// becomes a *RetryAfterError.
func slackError(doing string, err error) error {
	wrapped := fmt.Errorf("%s: %w", doing, err)
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok && len(se.ResponseMetadata.Messages) > 0 {
		wrapped = fmt.Errorf("%s: %w %q", doing, err, se.ResponseMetadata.Messages)
	}
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return &RetryAfterError{RetryAfter: rl.RetryAfter, Err: wrapped}
	}
	return wrapped
}

// slackErrorIs says whether err is Slack's answer with the error code.
func slackErrorIs(err error, code string) bool {
	se, ok := errors.AsType[slack.SlackErrorResponse](err)
	return ok && se.Err == code
}
