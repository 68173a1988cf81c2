package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// RetryAfterError is a Slack rate limit: try again after RetryAfter.
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

// SyncIncident brings the incident's Slack message up to date: it posts the
// message if there is none yet, updates it if what it shows has changed,
// and posts a thread reply for each new event. Replicas may call it for the
// same incident at once; a lock on the incident serializes them.
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
	msg, err = b.syncMessage(ctx, inc, msg, found)
	if err != nil {
		return err
	}
	return b.postEvents(ctx, inc, msg)
}

// syncMessage posts or updates the incident's message and saves it.
func (b *Bot) syncMessage(ctx context.Context, inc oncall.Incident, msg storage.SlackMessage, found bool) (storage.SlackMessage, error) {
	text, blocks := IncidentText(inc), RenderIncident(inc)
	hash, err := messageHash(text, blocks)
	if err != nil {
		return msg, fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	if found && msg.Hash == hash {
		return msg, nil
	}
	if found {
		err = b.send(ctx, inc, func(blocks []slack.Block) error {
			_, _, _, err := b.api.UpdateMessageContext(ctx, msg.Channel, msg.TS,
				slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
			return err
		})
		if slackErrorIs(err, "message_not_found") {
			b.log.Warn("incident message deleted in Slack; posting it again", "incident", inc.ID, "ts", msg.TS)
			found = false
		} else if err != nil {
			return msg, slackError(fmt.Sprintf("update Slack message of incident %d", inc.ID), err)
		}
	}
	if !found {
		channel := inc.Channel
		if channel == "" {
			channel = msg.Channel
		}
		meta := slack.SlackMetadata{EventType: metadataEventType, EventPayload: map[string]any{"incident_id": inc.ID}}
		var posted storage.SlackMessage
		err = b.send(ctx, inc, func(blocks []slack.Block) error {
			ch, ts, err := b.api.PostMessageContext(ctx, channel,
				slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...), slack.MsgOptionMetadata(meta))
			posted = storage.SlackMessage{IncidentID: inc.ID, Channel: ch, TS: ts}
			return err
		})
		if err != nil {
			return msg, slackError(fmt.Sprintf("post incident %d to Slack channel %s", inc.ID, channel), err)
		}
		msg = posted
		b.log.Info("incident posted to Slack", "incident", inc.ID, "channel", msg.Channel, "ts", msg.TS)
	}
	msg.Hash = hash
	if err := b.store.SaveSlackMessage(ctx, msg); err != nil {
		return msg, fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	return msg, nil
}

// send calls Slack with the incident's blocks. Slack refuses a message
// whose image it cannot fetch (invalid_blocks); the message is then sent
// again without the image rather than not at all.
func (b *Bot) send(ctx context.Context, inc oncall.Incident, call func(blocks []slack.Block) error) error {
	err := call(RenderIncident(inc))
	if inc.ImageURL == "" || !slackErrorIs(err, "invalid_blocks") {
		return err
	}
	b.log.Warn("Slack refused the incident message; sending it without the image", "incident", inc.ID, "err", err)
	return call(renderIncident(inc, false))
}

// postEvents posts a thread reply for each event not yet posted, and marks
// every event posted (those that need no reply too).
func (b *Bot) postEvents(ctx context.Context, inc oncall.Incident, msg storage.SlackMessage) error {
	events, err := b.store.UnpostedEvents(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("sync incident %d: %w", inc.ID, err)
	}
	for _, ev := range events {
		ts := msg.TS
		if text, ok := eventText(inc, ev); ok {
			_, ts, err = b.api.PostMessageContext(ctx, msg.Channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(msg.TS))
			if err != nil {
				return slackError(fmt.Sprintf("post %s event %d of incident %d to Slack", ev.Kind, ev.ID, inc.ID), err)
			}
		}
		if err := b.store.MarkEventPosted(ctx, ev.ID, ts); err != nil {
			return fmt.Errorf("sync incident %d: %w", inc.ID, err)
		}
	}
	return nil
}

// eventText is the thread reply for an event; false for events that need
// none (the message itself shows them).
func eventText(inc oncall.Incident, ev oncall.Event) (string, bool) {
	who := actorText(ev.Actor, inc.Kind)
	var text string
	switch ev.Kind {
	case oncall.EventAcknowledged:
		text = "Acknowledged by " + who
	case oncall.EventUnacknowledged:
		text = "Unacknowledged by " + who
	case oncall.EventResolved:
		text = "Resolved by " + who
	case oncall.EventReopened:
		text = "Reopened by " + who
	case oncall.EventEscalated:
		text = "<!here> Escalated by " + who
		if ev.Note == "" && inc.Escalation == "" {
			text += ": no escalation chain configured yet"
		}
	default:
		return "", false
	}
	if ev.Note != "" {
		text += ": " + escape(ev.Note)
	}
	return truncate(text, maxSectionText), true
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
