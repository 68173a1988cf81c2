package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
)

// ClaimDueDeliveries takes up to limit pending deliveries due at now,
// earliest first, hands them to publish (the durable queue) and marks them
// queued, all in one transaction: a delivery is queued only once its
// message is stored, and a failed publish leaves it pending for the next
// call. Replicas claim disjoint sets (FOR UPDATE SKIP LOCKED). Deliveries
// of a resolved incident are not claimed, nor those of an acknowledged one
// planned before the acknowledgement (a manual escalation of an
// acknowledged incident pages still). It returns how many it queued.
//
// If the commit fails after publish, the messages exist for deliveries
// still pending: the worker accepts a pending delivery, and the next claim
// publishes it again under the same message id, which the queue
// deduplicates.
func (db *DB) ClaimDueDeliveries(ctx context.Context, now time.Time, limit int,
	publish func(ctx context.Context, ds []oncall.Delivery) error) (int, error) {
	n, err := db.publishLocked(ctx, publish, `UPDATE deliveries SET status = 'queued', queued_at = now() WHERE id = ANY($1)`, `
		SELECT `+deliveryColumns("d")+` FROM deliveries d
		JOIN incidents i ON i.id = d.incident_id
		WHERE d.status = 'pending' AND d.due_at <= $1
		  AND (i.status = 'triggered' OR i.status = 'acknowledged' AND d.created_at > i.acked_at)
		  AND (i.silenced_until IS NULL OR i.silenced_until <= $1)
		ORDER BY d.due_at, d.id
		LIMIT $2
		FOR UPDATE OF d SKIP LOCKED`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("claim due deliveries: %w", err)
	}
	return n, nil
}

// RequeueStuckDeliveries publishes again, with publish, up to limit
// deliveries whose queue message may have been lost: queued longer than
// stuckAfter ago (a message waits in the queue's backoff for a minute at
// most), or sending with a lease that ran out that long ago (a worker died
// and its message is gone). A delivery published twice is harmless: the
// worker takes it once. It returns how many it published.
func (db *DB) RequeueStuckDeliveries(ctx context.Context, stuckAfter time.Duration, limit int,
	publish func(ctx context.Context, ds []oncall.Delivery) error) (int, error) {
	n, err := db.publishLocked(ctx, publish, `UPDATE deliveries SET queued_at = now() WHERE id = ANY($1)`, `
		SELECT `+deliveryColumns("deliveries")+` FROM deliveries
		WHERE status IN ('queued', 'sending') AND queued_at < now() - $1::interval
		  AND (status = 'queued' OR lease_until < now() - $1::interval)
		ORDER BY queued_at
		LIMIT $2
		FOR UPDATE SKIP LOCKED`, stuckAfter, limit)
	if err != nil {
		return 0, fmt.Errorf("requeue stuck deliveries: %w", err)
	}
	return n, nil
}

// publishLocked selects deliveries with query (which locks them), hands
// them to publish and runs mark (its $1: their ids) on them, in one
// transaction: they are marked only once their messages are stored. It
// returns how many it published.
func (db *DB) publishLocked(ctx context.Context, publish func(ctx context.Context, ds []oncall.Delivery) error,
	mark, query string, args ...any) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		ds, err := collectDeliveries(rows)
		if err != nil || len(ds) == 0 {
			return err
		}
		if err := publish(ctx, ds); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		ids := make([]int64, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		if _, err := tx.Exec(ctx, mark, ids); err != nil {
			return fmt.Errorf("mark published: %w", err)
		}
		n = len(ds)
		return nil
	})
	return n, err
}

// ProviderIDTaken says whether another delivery than id has recorded the
// provider's id providerID: a page reconciliation found that is another
// page's.
func (db *DB) ProviderIDTaken(ctx context.Context, providerID string, id int64) (bool, error) {
	var taken bool
	err := db.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM deliveries WHERE provider_id = $1 AND id <> $2)`, providerID, id).Scan(&taken)
	if err != nil {
		return false, fmt.Errorf("look up provider id %q: %w", providerID, err)
	}
	return taken, nil
}

// Deliveries returns the deliveries of an incident, oldest first.
func (db *DB) Deliveries(ctx context.Context, incidentID int64) ([]oncall.Delivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns("deliveries")+` FROM deliveries
		WHERE incident_id = $1 ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("load deliveries of incident %d: %w", incidentID, err)
	}
	ds, err := collectDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("load deliveries of incident %d: %w", incidentID, err)
	}
	return ds, nil
}

// Delivery returns one delivery; oncall.ErrNotFound if there is none.
func (db *DB) Delivery(ctx context.Context, id int64) (oncall.Delivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns("deliveries")+` FROM deliveries WHERE id = $1`, id)
	if err != nil {
		return oncall.Delivery{}, fmt.Errorf("load delivery %d: %w", id, err)
	}
	ds, err := collectDeliveries(rows)
	if err != nil {
		return oncall.Delivery{}, fmt.Errorf("load delivery %d: %w", id, err)
	}
	if len(ds) == 0 {
		return oncall.Delivery{}, fmt.Errorf("delivery %d: %w", id, oncall.ErrNotFound)
	}
	return ds[0], nil
}

func deliveryColumns(table string) string {
	t := table + "."
	return t + "id, " + t + "key, " + t + "incident_id, " + t + "step, " + t + "repeat, " + t + "person, " +
		t + "channel, " + t + "due_at, " + t + "status, " + t + "attempts, " + t + "error, " + t + "provider_id, " +
		t + "created_at, " + t + "sent_at"
}

func collectDeliveries(rows pgx.Rows) ([]oncall.Delivery, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (oncall.Delivery, error) {
		var (
			d    oncall.Delivery
			sent *time.Time
		)
		err := row.Scan(&d.ID, &d.Key, &d.IncidentID, &d.Step, &d.Repeat, &d.Person, &d.Channel, &d.DueAt,
			&d.Status, &d.Attempts, &d.Error, &d.ProviderID, &d.CreatedAt, &sent)
		d.DueAt, d.CreatedAt, d.SentAt = d.DueAt.UTC(), d.CreatedAt.UTC(), derefTime(sent)
		return d, err
	})
}

// DeliveryStep is what a worker does with a delivery it took from the
// queue (BeginDelivery).
type DeliveryStep int

const (
	// DeliverySkip: sent, failed or cancelled already, or its incident no
	// longer needs it (then it is cancelled now). Nothing to do.
	DeliverySkip DeliveryStep = iota
	// DeliverySend: send it; the delivery is now sending under a lease.
	DeliverySend
	// DeliveryReconcile: a worker died while sending it (its lease ran
	// out). Look for the page made since Since before sending again.
	DeliveryReconcile
	// DeliveryWait: another worker holds its lease; try again after Wait.
	DeliveryWait
)

// DeliveryClaim is what BeginDelivery decided.
type DeliveryClaim struct {
	Step     DeliveryStep
	Delivery oncall.Delivery
	Incident oncall.Incident
	Since    time.Time     // DeliveryReconcile: when the attempt that died started
	Wait     time.Duration // DeliveryWait
}

// BeginDelivery takes a delivery to send it, at now, under a lease: a
// pending or queued delivery becomes sending until now+lease, and counts an
// attempt. A delivery whose lease expired (the worker died between the
// provider call and recording it) is taken for reconciliation. The
// incident is re-read under lock: a delivery of a resolved incident, or of
// an incident acknowledged after the delivery was planned, is cancelled.
// oncall.ErrNotFound if there is no such delivery.
func (db *DB) BeginDelivery(ctx context.Context, id int64, now time.Time, lease time.Duration) (DeliveryClaim, error) {
	var c DeliveryClaim
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		c = DeliveryClaim{}
		var (
			sendingAt, leaseUntil, ackedAt, silenced *time.Time
			incidentStatus                           oncall.IncidentStatus
		)
		// The incident first, then the delivery: the order every other
		// writer of both takes them in.
		err := tx.QueryRow(ctx, `
			SELECT i.status, i.acked_at, i.silenced_until FROM incidents i
			WHERE i.id = (SELECT incident_id FROM deliveries WHERE id = $1)
			FOR UPDATE`, id).Scan(&incidentStatus, &ackedAt, &silenced)
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT sending_at, lease_until FROM deliveries WHERE id = $1 FOR UPDATE`, id).
				Scan(&sendingAt, &leaseUntil)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("delivery %d: %w", id, oncall.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock delivery: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns("deliveries")+` FROM deliveries WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("load delivery: %w", err)
		}
		ds, err := collectDeliveries(rows)
		if err != nil {
			return fmt.Errorf("load delivery: %w", err)
		}
		c.Delivery = ds[0]
		d := c.Delivery
		switch d.Status {
		case oncall.DeliveryPending, oncall.DeliveryQueued, oncall.DeliverySending:
		default:
			return nil // done already
		}
		stale := incidentStatus == oncall.StatusResolved ||
			incidentStatus == oncall.StatusAcknowledged && ackedAt != nil && !d.CreatedAt.After(*ackedAt) ||
			silenced != nil && silenced.After(now)
		if stale && d.Status != oncall.DeliverySending {
			_, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'cancelled' WHERE id = $1`, id)
			if err != nil {
				return fmt.Errorf("cancel delivery: %w", err)
			}
			c.Delivery.Status = oncall.DeliveryCancelled
			return nil
		}
		c.Step = DeliverySend
		if d.Status == oncall.DeliverySending {
			if leaseUntil != nil && leaseUntil.After(now) {
				c.Step, c.Wait = DeliveryWait, leaseUntil.Sub(now)
				return nil
			}
			// The page may have been made: reconcile even when the incident
			// was resolved meanwhile, so that the record says what happened.
			c.Step, c.Since = DeliveryReconcile, derefTime(sendingAt)
		}
		newSendingAt := now
		if c.Step == DeliveryReconcile && sendingAt != nil {
			newSendingAt = *sendingAt // keep looking from the first attempt that may have sent it
		}
		if _, err := tx.Exec(ctx, `
			UPDATE deliveries SET status = 'sending', attempts = attempts + 1, sending_at = $2, lease_until = $3
			WHERE id = $1`, id, newSendingAt, now.Add(lease)); err != nil {
			return fmt.Errorf("mark sending: %w", err)
		}
		c.Delivery.Status = oncall.DeliverySending
		c.Delivery.Attempts++
		if c.Incident, err = loadIncident(ctx, tx, d.IncidentID); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return DeliveryClaim{}, fmt.Errorf("begin delivery %d: %w", id, err)
	}
	return c, nil
}

// DeliverySent records that the provider accepted a delivery being sent
// (providerID: its id there) and adds the "paged" event with note. A
// provider's status that arrived first (RecordDeliveryStatus) is kept. It
// reports whether the delivery was being sent.
func (db *DB) DeliverySent(ctx context.Context, id int64, providerID, note string) (bool, error) {
	var ok bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockIncidentOf(ctx, tx, id); err != nil {
			return err
		}
		var d oncall.Delivery
		err := tx.QueryRow(ctx, `
			UPDATE deliveries
			SET status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END,
			    provider_id = $2, sent_at = now(), lease_until = NULL, error = ''
			WHERE id = $1 AND (status = 'sending' OR status IN ('delivered', 'failed') AND provider_id = '')
			RETURNING incident_id, person, channel`, id, providerID).Scan(&d.IncidentID, &d.Person, &d.Channel)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("mark sent: %w", err)
		}
		ok = true
		return insertEvent(ctx, tx, oncall.Event{IncidentID: d.IncidentID, Kind: oncall.EventPaged,
			Actor: oncall.ActorSystem, Target: d.Person, Channel: d.Channel, Note: note})
	})
	if err != nil {
		return false, fmt.Errorf("record delivery %d as sent: %w", id, err)
	}
	return ok, nil
}

// CancelDelivery records that a delivery being sent is not needed any
// more (its incident was resolved or acknowledged while an attempt was cut
// short), with why. It reports whether the delivery was being sent.
func (db *DB) CancelDelivery(ctx context.Context, id int64, why string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `
		UPDATE deliveries SET status = 'cancelled', error = $2, lease_until = NULL
		WHERE id = $1 AND status = 'sending'`, id, why)
	if err != nil {
		return false, fmt.Errorf("cancel delivery %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Retry is a failed attempt of a delivery that is tried again.
type Retry struct {
	Error string        // what went wrong, for the record
	Delay time.Duration // until the next attempt
	// Uncertain: the attempt may have reached the provider (a timeout, a
	// server error). The delivery stays sending with its lease ending
	// after Delay, so that the next attempt reconciles before sending.
	Uncertain bool
	// RateLimited: the provider asked to wait; the attempt does not count
	// against the delivery's attempts.
	RateLimited bool
}

// RetryDelivery records a failed attempt of a delivery being sent that is
// tried again after r.Delay: it goes back to queued, or stays sending when
// r.Uncertain.
func (db *DB) RetryDelivery(ctx context.Context, id int64, r Retry) error {
	status := oncall.DeliveryQueued
	if r.Uncertain {
		status = oncall.DeliverySending
	}
	_, err := db.pool.Exec(ctx, `
		UPDATE deliveries SET status = $2, error = $3, queued_at = now(),
		    lease_until = CASE WHEN $2 = 'sending' THEN now() + $4::interval ELSE NULL END,
		    attempts = CASE WHEN $5 THEN greatest(attempts - 1, 0) ELSE attempts END
		WHERE id = $1 AND status = 'sending'`, id, status, r.Error, r.Delay, r.RateLimited)
	if err != nil {
		return fmt.Errorf("record failed attempt of delivery %d: %w", id, err)
	}
	return nil
}

// FailDelivery records that a delivery failed for good (a permanent error,
// or its last attempt): it adds a "page_failed" event and falls back: the
// next page of the same person planned for the same step is due now, and a
// person with none left who was not paged in Slack yet at this step gets a
// Slack message. It returns the fallback delivery, if any, and whether
// the delivery was being sent (false: recorded already).
func (db *DB) FailDelivery(ctx context.Context, id int64, errText string) (fallback *oncall.Delivery, ok bool, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		fallback, ok = nil, false
		if err := lockIncidentOf(ctx, tx, id); err != nil {
			return err
		}
		var d oncall.Delivery
		err := tx.QueryRow(ctx, `
			UPDATE deliveries SET status = 'failed', error = $2, lease_until = NULL
			WHERE id = $1 AND status = 'sending'
			RETURNING id, key, incident_id, step, repeat, person, channel`, id, errText).
			Scan(&d.ID, &d.Key, &d.IncidentID, &d.Step, &d.Repeat, &d.Person, &d.Channel)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("mark failed: %w", err)
		}
		ok = true
		fallback, err = fallBack(ctx, tx, d, errText)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("record failure of delivery %d: %w", id, err)
	}
	return fallback, ok, nil
}

// RecordDeliveryStatus records what the provider said of a delivery after
// accepting it: DeliveryDelivered (arrived, or the call was answered) adds
// a "page_delivered" event; DeliveryFailed (undelivered, no answer, busy)
// adds a "page_failed" event and falls back as FailDelivery does. detail is
// the provider's words. A status that arrives before the worker recorded
// the send is kept. It reports whether anything changed: a repeated
// callback changes nothing. oncall.ErrNotFound for an unknown delivery.
func (db *DB) RecordDeliveryStatus(ctx context.Context, id int64, status oncall.DeliveryStatus, detail string) (bool, error) {
	if status != oncall.DeliveryDelivered && status != oncall.DeliveryFailed {
		return false, fmt.Errorf("record status of delivery %d: %q is not a provider's final status", id, status)
	}
	var c textCheck
	c.text("detail", detail)
	if c.err != nil {
		return false, fmt.Errorf("record status of delivery %d: %w", id, c.err)
	}
	var changed bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		changed = false
		if err := lockIncidentOf(ctx, tx, id); err != nil {
			return err
		}
		var (
			d   oncall.Delivery
			cur oncall.DeliveryStatus
		)
		err := tx.QueryRow(ctx, `
			SELECT id, key, incident_id, step, repeat, person, channel, status FROM deliveries
			WHERE id = $1 FOR UPDATE`, id).
			Scan(&d.ID, &d.Key, &d.IncidentID, &d.Step, &d.Repeat, &d.Person, &d.Channel, &cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("delivery %d: %w", id, oncall.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock delivery: %w", err)
		}
		if cur != oncall.DeliverySent && cur != oncall.DeliverySending {
			return nil // final already: a repeated or late callback
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = $2, detail = $3, lease_until = NULL WHERE id = $1`,
			id, status, detail); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		changed = true
		if status == oncall.DeliveryDelivered {
			return insertEvent(ctx, tx, oncall.Event{IncidentID: d.IncidentID, Kind: oncall.EventPageDelivered,
				Actor: oncall.ActorSystem, Target: d.Person, Channel: d.Channel, Note: detail})
		}
		_, err = fallBack(ctx, tx, d, detail)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record status of delivery %d: %w", id, err)
	}
	return changed, nil
}

// lockIncidentOf locks the incident of a delivery. Writers of a delivery
// take its incident first, as the writers of incidents that change their
// deliveries do, so that they cannot deadlock. A missing delivery locks
// nothing; the caller's query finds it missing.
func lockIncidentOf(ctx context.Context, tx pgx.Tx, deliveryID int64) error {
	_, err := tx.Exec(ctx, `
		SELECT 1 FROM incidents WHERE id = (SELECT incident_id FROM deliveries WHERE id = $1) FOR UPDATE`, deliveryID)
	if err != nil {
		return fmt.Errorf("lock incident: %w", err)
	}
	return nil
}

// fallBack (its caller holds the incident locked) answers a failed page of d's person: the earliest page of the
// same person still planned for the same step and pass is due now; a person
// with none left gets a Slack message unless one was made or planned at
// this step already (or the failed page was one). It adds the
// "page_failed" event saying so.
func fallBack(ctx context.Context, tx pgx.Tx, d oncall.Delivery, why string) (*oncall.Delivery, error) {
	var status oncall.IncidentStatus
	err := tx.QueryRow(ctx, `SELECT status FROM incidents WHERE id = $1`, d.IncidentID).Scan(&status)
	if err != nil {
		return nil, fmt.Errorf("load incident status: %w", err)
	}
	var next *oncall.Delivery
	if status == oncall.StatusTriggered {
		rows, err := tx.Query(ctx, `
			UPDATE deliveries SET due_at = LEAST(due_at, now())
			WHERE id = (SELECT id FROM deliveries
			            WHERE incident_id = $1 AND step = $2 AND repeat = $3 AND person = $4 AND status = 'pending'
			            ORDER BY due_at, id LIMIT 1 FOR UPDATE)
			RETURNING `+deliveryColumns("deliveries"), d.IncidentID, d.Step, d.Repeat, d.Person)
		if err != nil {
			return nil, fmt.Errorf("move the next page forward: %w", err)
		}
		ds, err := collectDeliveries(rows)
		if err != nil {
			return nil, fmt.Errorf("move the next page forward: %w", err)
		}
		if len(ds) == 1 {
			next = &ds[0]
		} else if d.Channel != oncall.NotifySlack {
			next, err = slackFallback(ctx, tx, d)
			if err != nil {
				return nil, err
			}
		}
	}
	note := why
	switch {
	case next != nil:
		note += "; paging by " + next.Channel.Name() + " now"
	case status == oncall.StatusTriggered:
		note += "; no other way to reach them at this step"
	}
	err = insertEvent(ctx, tx, oncall.Event{IncidentID: d.IncidentID, Kind: oncall.EventPageFailed,
		Actor: oncall.ActorSystem, Target: d.Person, Channel: d.Channel, Note: note})
	return next, err
}

// slackFallback plans a Slack message for d's person, due now, unless
// one exists at d's step and pass.
func slackFallback(ctx context.Context, tx pgx.Tx, d oncall.Delivery) (*oncall.Delivery, error) {
	fb := oncall.Delivery{Key: d.Key + ":fallback", IncidentID: d.IncidentID, Step: d.Step, Repeat: d.Repeat,
		Person: d.Person, Channel: oncall.NotifySlack, DueAt: time.Now()}
	rows, err := tx.Query(ctx, `
		INSERT INTO deliveries (key, incident_id, step, repeat, person, channel, due_at)
		SELECT $1, $2, $3, $4, $5, 'slack', now()
		WHERE NOT EXISTS (SELECT 1 FROM deliveries
		                  WHERE incident_id = $2 AND step = $3 AND repeat = $4 AND person = $5 AND channel = 'slack')
		ON CONFLICT (key) DO NOTHING
		RETURNING `+deliveryColumns("deliveries"), fb.Key, fb.IncidentID, fb.Step, fb.Repeat, fb.Person)
	if err != nil {
		return nil, fmt.Errorf("plan a Slack message instead: %w", err)
	}
	ds, err := collectDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("plan a Slack message instead: %w", err)
	}
	if len(ds) == 0 {
		return nil, nil
	}
	return &ds[0], nil
}
