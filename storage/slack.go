package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oncallbot/oncall"
)

// SlackMessage is the Slack message that shows an incident.
type SlackMessage struct {
	IncidentID int64
	Channel    string
	// TS is the message's ts; "" while it is being posted: the message is
	// claimed, and whether Slack has it is not known yet.
	TS string
	// Hash of the rendered message, to skip updates that change nothing.
	Hash string
	// Status and Escalations are what the message showed when it was last
	// posted or updated, at ShownAt (zero: never): the bot coalesces
	// updates that change neither.
	Status      oncall.IncidentStatus
	Escalations int
	ShownAt     time.Time
}

// SlackMessage loads the Slack message of an incident; false if none was
// saved.
func (db *DB) SlackMessage(ctx context.Context, incidentID int64) (SlackMessage, bool, error) {
	var (
		m       SlackMessage
		shownAt *time.Time
	)
	err := db.pool.QueryRow(ctx, `
		SELECT incident_id, channel, ts, hash, status, escalations, shown_at
		FROM slack_messages WHERE incident_id = $1`,
		incidentID).Scan(&m.IncidentID, &m.Channel, &m.TS, &m.Hash, &m.Status, &m.Escalations, &shownAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return SlackMessage{}, false, nil
	}
	if err != nil {
		return SlackMessage{}, false, fmt.Errorf("load Slack message of incident %d: %w", incidentID, err)
	}
	if shownAt != nil {
		m.ShownAt = *shownAt
	}
	return m, true, nil
}

// SaveSlackMessage saves the Slack message of an incident, replacing the
// one saved before (every field; a zero ShownAt is stored as never).
// oncall.ErrNotFound if there is no such incident.
func (db *DB) SaveSlackMessage(ctx context.Context, m SlackMessage) error {
	var c textCheck
	c.text("channel", m.Channel)
	c.text("ts", m.TS)
	c.text("hash", m.Hash)
	c.text("status", string(m.Status))
	if c.err != nil {
		return fmt.Errorf("save Slack message of incident %d: %w", m.IncidentID, c.err)
	}
	var shownAt *time.Time
	if !m.ShownAt.IsZero() {
		shownAt = &m.ShownAt
	}
	_, err := db.pool.Exec(ctx, `
		INSERT INTO slack_messages (incident_id, channel, ts, hash, status, escalations, shown_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (incident_id) DO UPDATE
		SET channel = EXCLUDED.channel, ts = EXCLUDED.ts, hash = EXCLUDED.hash, status = EXCLUDED.status,
		    escalations = EXCLUDED.escalations, shown_at = EXCLUDED.shown_at, updated_at = now()`,
		m.IncidentID, m.Channel, m.TS, m.Hash, m.Status, m.Escalations, shownAt)
	if isViolation(err, foreignKeyViolation) {
		err = oncall.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("save Slack message of incident %d: %w", m.IncidentID, err)
	}
	return nil
}

// UnpostedEvent is an event whose thread reply is not known to be in
// Slack.
type UnpostedEvent struct {
	oncall.Event
	// Claimed: a sync claimed the event's reply (ClaimEventPost) and did
	// not save its ts: the reply may be in Slack, and is looked for before
	// it is posted again.
	Claimed bool
}

// UnpostedEvents returns the events of an incident not yet posted to Slack,
// claimed ones included, oldest first.
func (db *DB) UnpostedEvents(ctx context.Context, incidentID int64) ([]UnpostedEvent, error) {
	// slack_ts is NULL until the event is claimed or posted, '' while it
	// is claimed.
	rows, err := db.pool.Query(ctx, `
		SELECT `+eventColumns+`, slack_ts IS NOT NULL FROM incident_events
		WHERE incident_id = $1 AND (slack_ts IS NULL OR slack_ts = '') ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("load unposted events of incident %d: %w", incidentID, err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (UnpostedEvent, error) {
		var e UnpostedEvent
		ev, err := scanEvent(row, &e.Claimed)
		e.Event = ev
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("load unposted events of incident %d: %w", incidentID, err)
	}
	return evs, nil
}

// ClaimEventPost records that the event's thread reply is about to be
// posted, so that a sync after a crash before MarkEventPosted looks for the
// reply before posting it again. Claiming a claimed event changes nothing;
// a posted event stays posted. oncall.ErrNotFound if there is no such
// event.
func (db *DB) ClaimEventPost(ctx context.Context, eventID int64) error {
	var exists bool
	err := db.pool.QueryRow(ctx, `
		WITH claimed AS (UPDATE incident_events SET slack_ts = '' WHERE id = $1 AND slack_ts IS NULL)
		SELECT EXISTS (SELECT 1 FROM incident_events WHERE id = $1)`, eventID).Scan(&exists)
	if err != nil {
		return fmt.Errorf("claim the Slack post of event %d: %w", eventID, err)
	}
	if !exists {
		return fmt.Errorf("claim the Slack post of event %d: %w", eventID, oncall.ErrNotFound)
	}
	return nil
}

// MarkEventPosted records the ts of the Slack message that posted an event
// (its thread reply, or the incident's message for an event that needs no
// reply). oncall.ErrNotFound if there is no such event.
func (db *DB) MarkEventPosted(ctx context.Context, eventID int64, ts string) error {
	if ts == "" {
		return fmt.Errorf("mark event %d posted: empty ts", eventID)
	}
	var c textCheck
	c.text("ts", ts)
	if c.err != nil {
		return fmt.Errorf("mark event %d posted: %w", eventID, c.err)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE incident_events SET slack_ts = $2 WHERE id = $1`, eventID, ts)
	if err != nil {
		return fmt.Errorf("mark event %d posted: %w", eventID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mark event %d posted: %w", eventID, oncall.ErrNotFound)
	}
	return nil
}

// incidentLockSpace is the first key of the two-key advisory locks on
// incidents ("onc"), apart from goose's single-key migration lock. The
// second key is the incident id truncated to 32 bits: ids 2^32 apart share
// a lock, which only ever serializes more, never less.
const incidentLockSpace int32 = 0x6f6e63

// WithIncidentLock runs fn while holding a lock on the incident that every
// replica respects: a session advisory lock on a connection of its own.
// Should the process die, the connection drops and the lock with it. fn's
// error is returned as is.
func (db *DB) WithIncidentLock(ctx context.Context, incidentID int64, fn func(ctx context.Context) error) error {
	conn, err := db.locks.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("lock incident %d: get a connection: %w", incidentID, err)
	}
	key := int32(incidentID)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, incidentLockSpace, key); err != nil {
		// The lock may have been granted just as the wait was abandoned:
		// close the session rather than pool a connection holding it.
		discard(conn)
		return fmt.Errorf("lock incident %d: %w", incidentID, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var unlocked bool
		err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, incidentLockSpace, key).Scan(&unlocked)
		if err != nil || !unlocked {
			discard(conn) // closing the session releases its locks
			return
		}
		conn.Release()
	}()
	return fn(ctx)
}

// discard closes a pooled connection instead of returning it to the pool.
func discard(conn *pgxpool.Conn) {
	c := conn.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
