package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
)

// RecordResult tells what RecordBatch did.
type RecordResult struct {
	// IncidentID is the incident the batch went to; 0 for a resolved batch
	// that found no open incident.
	IncidentID int64
	// Created: the batch opened a new incident.
	Created bool
	// Resolved: the batch resolved its incident.
	Resolved bool
	// Duplicate: the batch was recorded before; nothing changed.
	Duplicate bool
	// Stale: the batch was delivered out of order (several workers,
	// retries) and is recorded without the change it would have made:
	//   - a firing batch that found no open incident, while a resolved
	//     batch of its group received after it was already recorded:
	//     no incident is opened that nothing would resolve; IncidentID
	//     is 0;
	//   - a resolved batch received before the latest firing batch of the
	//     open incident of its group: the incident stays open; the batch
	//     and its alerts are recorded on it (IncidentID), without changing
	//     the latest status of the alerts the firing batch reported.
	Stale bool
	// UnknownIntegration: the database did not know the batch's
	// integration (it left the config before the batch was processed, or
	// the config that accepted it was never synced to the database). The
	// batch is recorded all the same, under a disabled integration of its
	// name and kind with no token and no channel, created by the first
	// such batch: its incident goes only to a channel the batch names.
	UnknownIntegration bool
}

// RecordBatch records a batch of alerts in one transaction: it opens, joins
// or resolves the open incident of the batch's group. Recording the same
// batch ID again changes nothing and reports Duplicate. A firing batch older
// than a resolved batch of its group already recorded opens nothing, and a
// resolved batch older than the latest firing batch of the open incident
// resolves nothing; both report Stale. A new incident goes to the batch's
// Channel and Escalation, else to the integration's. A batch of an
// integration the database does not know is recorded under a new disabled
// one and reports UnknownIntegration.
func (db *DB) RecordBatch(ctx context.Context, b oncall.AlertBatch) (RecordResult, error) {
	if err := validateBatch(b); err != nil {
		return RecordResult{}, fmt.Errorf("record batch %q: %w", b.ID, err)
	}
	var res RecordResult
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		res, err = recordBatch(ctx, tx, b)
		return err
	})
	if err != nil {
		return RecordResult{}, fmt.Errorf("record batch %q: %w", b.ID, err)
	}
	return res, nil
}

func validateBatch(b oncall.AlertBatch) error {
	if b.ID == "" {
		return errors.New("empty batch id")
	}
	if b.Status != oncall.AlertFiring && b.Status != oncall.AlertResolved {
		return fmt.Errorf("status %q is neither firing nor resolved", b.Status)
	}
	switch b.Action {
	case "", oncall.ActionAcknowledge, oncall.ActionUnacknowledge:
	default:
		return fmt.Errorf("action %q of a source is neither acknowledge nor unacknowledge", b.Action)
	}
	var c textCheck
	c.text("note", b.Note)
	c.text("id", b.ID)
	c.text("integration", b.Integration)
	c.text("kind", b.Kind)
	c.text("group key", b.GroupKey)
	c.text("title", b.Title)
	c.text("message", b.Message)
	c.text("severity", string(b.Severity))
	c.text("link", b.Link)
	c.text("image url", b.ImageURL)
	c.text("channel", b.Channel)
	c.text("escalation", b.Escalation)
	c.labels("labels", b.Labels)
	for i, a := range b.Alerts {
		if a.Status != oncall.AlertFiring && a.Status != oncall.AlertResolved {
			return fmt.Errorf("alert %d: status %q is neither firing nor resolved", i, a.Status)
		}
		field := func(name string) string { return fmt.Sprintf("alert %d: %s", i, name) }
		c.text(field("fingerprint"), a.Fingerprint)
		c.text(field("title"), a.Title)
		c.text(field("message"), a.Message)
		c.text(field("severity"), string(a.Severity))
		c.text(field("link"), a.Link)
		c.text(field("image url"), a.ImageURL)
		c.labels(field("labels"), a.Labels)
		c.labels(field("annotations"), a.Annotations)
	}
	return c.err
}

func recordBatch(ctx context.Context, tx pgx.Tx, b oncall.AlertBatch) (RecordResult, error) {
	integrationID, channel, escalation, unknown, err := loadOrCreateIntegration(ctx, tx, b)
	if err != nil {
		return RecordResult{}, err
	}
	res, err := recordBatchOf(ctx, tx, integrationID, channel, escalation, b)
	if err != nil {
		return RecordResult{}, err
	}
	res.UnknownIntegration = unknown
	return res, nil
}

// loadOrCreateIntegration returns the batch's integration. One missing
// (no longer in the config) is created disabled, with an empty token hash
// that no token's sha256 matches, and no channel: the alert was accepted,
// and is kept rather than lost or retried forever. unknown reports such an
// integration, created now or by an earlier batch; SyncIntegrations leaves
// it disabled until the config lists it again, and then gives it a token.
func loadOrCreateIntegration(ctx context.Context, tx pgx.Tx, b oncall.AlertBatch) (
	id int64, channel, escalation string, unknown bool, err error) {
	for range 2 {
		err = tx.QueryRow(ctx, `
			SELECT id, channel, escalation, octet_length(token_hash) = 0 FROM integrations WHERE name = $1`,
			b.Integration).Scan(&id, &channel, &escalation, &unknown)
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
		// A concurrent insert of the same name makes this one wait for it,
		// then insert nothing; the next SELECT sees its row.
		err = tx.QueryRow(ctx, `
			INSERT INTO integrations (name, kind, token_hash, enabled) VALUES ($1, $2, '', false)
			ON CONFLICT (name) DO NOTHING
			RETURNING id`, b.Integration, b.Kind).Scan(&id)
		if err == nil {
			return id, "", "", true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, "", "", false, fmt.Errorf("create the unknown integration %q: %w", b.Integration, err)
		}
	}
	if err != nil {
		return 0, "", "", false, fmt.Errorf("load integration %q: %w", b.Integration, err)
	}
	return id, channel, escalation, unknown, nil
}

// recordBatchOf records the batch under its integration, whose channel
// and escalation a new incident gets unless the batch names its own.
func recordBatchOf(ctx context.Context, tx pgx.Tx, integrationID int64, channel, escalation string,
	b oncall.AlertBatch) (RecordResult, error) {
	// The batch row first: a concurrent delivery of the same batch waits
	// here for this transaction, then finds it recorded.
	// A source's action or note carries no alerts: it has no status of
	// the group, and must not make a resolve received before it stale.
	var status *oncall.AlertStatus
	if len(b.Alerts) > 0 || b.Action == "" && b.Note == "" {
		status = &b.Status
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO alert_batches (id, integration_id, received_at, raw, group_key, status)
		VALUES ($1, $2, COALESCE($3, now()), $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`,
		b.ID, integrationID, nullTime(b.ReceivedAt), []byte(b.Raw), b.GroupKey, status)
	if err != nil {
		return RecordResult{}, fmt.Errorf("insert batch: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var incidentID *int64
		if err := tx.QueryRow(ctx, `SELECT incident_id FROM alert_batches WHERE id = $1`, b.ID).Scan(&incidentID); err != nil {
			return RecordResult{}, fmt.Errorf("load recorded batch: %w", err)
		}
		return RecordResult{IncidentID: deref(incidentID), Duplicate: true}, nil
	}

	// The batches of a group take turns from here to the commit. Otherwise
	// a firing batch and a later resolved one processed at once would not
	// see each other: the resolved one would find nothing open, and the
	// firing one no resolved batch, and open an incident nothing resolves.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`,
		groupLockSpace, groupLockKey(integrationID, b.GroupKey)); err != nil {
		return RecordResult{}, fmt.Errorf("lock group %q: %w", b.GroupKey, err)
	}

	if b.Heartbeat {
		if _, err := tx.Exec(ctx, `
			INSERT INTO integration_heartbeats (integration_id, last_seen) VALUES ($1, COALESCE($2, now()))
			ON CONFLICT (integration_id) DO UPDATE SET last_seen = greatest(integration_heartbeats.last_seen, EXCLUDED.last_seen)`,
			integrationID, nullTime(b.ReceivedAt)); err != nil {
			return RecordResult{}, fmt.Errorf("record heartbeat: %w", err)
		}
	}
	if b.Channel != "" {
		channel = b.Channel
	}
	if b.Escalation != "" {
		escalation = b.Escalation
	}
	open, err := lockOrCreateOpenIncident(ctx, tx, integrationID, channel, escalation, b)
	if err != nil {
		return RecordResult{}, err
	}
	if open.stale {
		// alerts rows need an incident: the batch row (with its raw body)
		// is the record of this one.
		return RecordResult{Stale: true}, setOutcome(ctx, tx, b.ID, "stale")
	}
	if open.id == 0 {
		// resolved, acted on or noted, and nothing open
		outcome := "no_incident"
		if b.Heartbeat {
			outcome = "heartbeat"
		}
		return RecordResult{}, setOutcome(ctx, tx, b.ID, outcome)
	}
	res := RecordResult{IncidentID: open.id, Created: open.created}
	partial := false // a resolve of some alerts while others of the incident still fire
	if !open.created && b.Status == oncall.AlertResolved {
		if res.Stale, err = olderThanLatestFiring(ctx, tx, open.id, b); err != nil {
			return RecordResult{}, err
		}
		if !res.Stale {
			if partial, err = othersFiring(ctx, tx, open.id, b); err != nil {
				return RecordResult{}, err
			}
		}
	}

	// What the batch did, kept for Opsgenie's request status: created,
	// joined, resolved, acknowledged, unacknowledged (a source's action;
	// "unchanged" when it did not apply), noted.
	outcome := "joined"
	switch {
	case open.created:
		outcome = "created"
		err = addEvent(ctx, tx, open.id, oncall.EventCreated, oncall.ActorSource, b.Title)
		var maintenance bool
		if err == nil {
			maintenance, err = inMaintenance(ctx, tx, b)
		}
		switch {
		case err != nil:
		case maintenance:
			err = addEvent(ctx, tx, open.id, oncall.EventNote, oncall.ActorSystem,
				"the integration is in maintenance: shown, nobody is paged")
		case escalation != "":
			// In the same transaction: an incident is never left without
			// the chain that pages for it.
			err = startEscalation(ctx, tx, open.id, escalation, cmp.Or(b.ReceivedAt, time.Now()))
		}
	case b.Action != "" && b.Status == oncall.AlertFiring:
		outcome, err = sourceAction(ctx, tx, open.id, b.Action, b.ReceivedAt)
	case res.Stale:
		// Its alerts count as received; the incident stays as it is.
		_, err = tx.Exec(ctx, `UPDATE incidents SET alert_count = alert_count + $2, updated_at = now() WHERE id = $1`,
			open.id, len(b.Alerts))
	case b.Status == oncall.AlertResolved && partial:
		// A group_key or a title may gather alerts of several
		// fingerprints: the incident resolves with the last of them.
		_, err = tx.Exec(ctx, `UPDATE incidents SET alert_count = alert_count + $2, updated_at = now() WHERE id = $1`,
			open.id, len(b.Alerts))
		if err == nil {
			err = addEvent(ctx, tx, open.id, oncall.EventAlert, oncall.ActorSource,
				"resolved: "+b.Title+" (other alerts of the incident still fire)")
		}
	case b.Status == oncall.AlertResolved:
		res.Resolved, outcome = true, "resolved"
		_, err = tx.Exec(ctx, `
			UPDATE incidents
			SET status = 'resolved', resolved_at = now(), resolved_by = $2,
			    alert_count = alert_count + $3, updated_at = now()
			WHERE id = $1`, open.id, oncall.ActorSource, len(b.Alerts))
		if err == nil {
			err = addEvent(ctx, tx, open.id, oncall.EventResolved, oncall.ActorSource, "")
		}
		if err == nil {
			err = stopEscalation(ctx, tx, open.id, time.Time{})
		}
	case len(b.Alerts) == 0:
		outcome = "noted" // a note alone: the incident stays as it is
	default:
		_, err = tx.Exec(ctx, `
			UPDATE incidents
			SET title = $2, message = $3, severity = $4, link = $5, image_url = $6, labels = $7,
			    alert_count = alert_count + $8, updated_at = now()
			WHERE id = $1`,
			open.id, b.Title, b.Message, oncall.MoreSevere(open.severity, b.Severity), b.Link, b.ImageURL,
			jsonObject(b.Labels), len(b.Alerts))
		if err == nil {
			err = addEvent(ctx, tx, open.id, oncall.EventAlert, oncall.ActorSource, b.Title)
		}
	}
	if err == nil && b.Note != "" {
		err = addEvent(ctx, tx, open.id, oncall.EventNote, oncall.ActorSource, b.Note)
	}
	if err != nil {
		return RecordResult{}, fmt.Errorf("update incident %d: %w", open.id, err)
	}

	if _, err := tx.Exec(ctx, `UPDATE alert_batches SET incident_id = $2, outcome = $3 WHERE id = $1`,
		b.ID, open.id, outcome); err != nil {
		return RecordResult{}, fmt.Errorf("link batch to incident %d: %w", open.id, err)
	}
	if err := insertAlerts(ctx, tx, open.id, b, !res.Stale); err != nil {
		return RecordResult{}, fmt.Errorf("insert alerts of incident %d: %w", open.id, err)
	}
	return res, nil
}

// keySeen says whether an event was recorded with the idempotency key
// key; an empty key is never seen.
func keySeen(ctx context.Context, tx pgx.Tx, key string) (bool, error) {
	if key == "" {
		return false, nil
	}
	var seen bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM incident_events WHERE dedup_key = $1)`, key).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return seen, nil
}

// setOutcome records what a batch that touched no incident did.
func setOutcome(ctx context.Context, tx pgx.Tx, batchID, outcome string) error {
	if _, err := tx.Exec(ctx, `UPDATE alert_batches SET outcome = $2 WHERE id = $1`, batchID, outcome); err != nil {
		return fmt.Errorf("record outcome of batch: %w", err)
	}
	return nil
}

// inMaintenance says whether the batch's integration is in maintenance:
// a window of the config (the batch is marked) or one started from Slack.
func inMaintenance(ctx context.Context, tx pgx.Tx, b oncall.AlertBatch) (bool, error) {
	if b.Maintenance {
		return true, nil
	}
	var in bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM integration_maintenance WHERE integration = $1 AND until > now())`,
		b.Integration).Scan(&in)
	if err != nil {
		return false, fmt.Errorf("look up maintenance: %w", err)
	}
	return in, nil
}

// sourceAction applies what the source did to the open incident (locked
// by the caller): acknowledge stops its chain, unacknowledge runs it again,
// in the same transaction. It returns the outcome; "unchanged" when the
// action does not apply to the incident's status.
func sourceAction(ctx context.Context, tx pgx.Tx, incidentID int64, a oncall.Action, at time.Time) (string, error) {
	t, ok := transitionOf(a)
	if !ok || a != oncall.ActionAcknowledge && a != oncall.ActionUnacknowledge {
		return "", fmt.Errorf("action %q from a source is not supported", a)
	}
	var status oncall.IncidentStatus
	if err := tx.QueryRow(ctx, `SELECT status FROM incidents WHERE id = $1`, incidentID).Scan(&status); err != nil {
		return "", fmt.Errorf("load status: %w", err)
	}
	if !slices.Contains(t.from, status) {
		return "unchanged", nil
	}
	args := []any{incidentID}
	if t.withActor {
		args = append(args, oncall.ActorSource)
	}
	if _, err := tx.Exec(ctx, "UPDATE incidents SET "+t.set+", updated_at = now() WHERE id = $1", args...); err != nil {
		return "", err
	}
	if err := addEvent(ctx, tx, incidentID, t.event, oncall.ActorSource, ""); err != nil {
		return "", err
	}
	if a == oncall.ActionAcknowledge {
		return "acknowledged", stopEscalation(ctx, tx, incidentID, time.Time{})
	}
	_, err := tx.Exec(ctx, restartEscalationSQL, incidentID, cmp.Or(at, time.Now()))
	return "unacknowledged", err
}

// othersFiring says whether the incident has firing alerts that a
// resolved batch does not resolve: fingerprints it does not name. A
// source that reports the whole group (Alertmanager, Grafana) names them
// all; a webhook's resolve names its own.
func othersFiring(ctx context.Context, tx pgx.Tx, incidentID int64, b oncall.AlertBatch) (bool, error) {
	fingerprints := make([]string, 0, len(b.Alerts))
	for _, a := range b.Alerts {
		fingerprints = append(fingerprints, a.Fingerprint)
	}
	var others bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM incident_alerts
		               WHERE incident_id = $1 AND status = 'firing' AND NOT (fingerprint = ANY($2)))`,
		incidentID, fingerprints).Scan(&others)
	if err != nil {
		return false, fmt.Errorf("look for alerts still firing: %w", err)
	}
	return others, nil
}

// opensIncident says whether a batch opens an incident when its group has
// none open: a firing batch of alerts does; a resolve, a source's action
// or a note without alerts acts on the open incident only.
func opensIncident(b oncall.AlertBatch) bool {
	return b.Status == oncall.AlertFiring && b.Action == "" && len(b.Alerts) > 0
}

// olderThanLatestFiring says whether a resolved batch was received before
// the latest firing batch recorded on the incident: it resolves an earlier
// state of the group, and the incident stays open. A batch without
// ReceivedAt counts as received now.
func olderThanLatestFiring(ctx context.Context, tx pgx.Tx, incidentID int64, b oncall.AlertBatch) (bool, error) {
	var older bool
	err := tx.QueryRow(ctx, `
		SELECT COALESCE($2, now()) < COALESCE(max(received_at), '-infinity')
		FROM alert_batches WHERE incident_id = $1 AND status = 'firing'`,
		incidentID, nullTime(b.ReceivedAt)).Scan(&older)
	if err != nil {
		return false, fmt.Errorf("find the latest firing batch of incident %d: %w", incidentID, err)
	}
	return older, nil
}

type openIncident struct {
	id       int64 // 0: none open, and the batch does not open one
	severity oncall.Severity
	created  bool
	stale    bool // id is 0 because a later resolved batch of the group was recorded
}

// groupLockSpace is the first key of the transaction advisory locks that
// serialize the batches of a group ("ong"), apart from incidentLockSpace.
const groupLockSpace int32 = 0x6f6e67

// groupLockKey is the second key of a group's lock: a hash of the group.
// Groups that share a hash share a lock, which only serializes more.
func groupLockKey(integrationID int64, groupKey string) int32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d\x00%s", integrationID, groupKey)
	return int32(h.Sum32())
}

// lockOrCreateOpenIncident finds and locks the open incident of the batch's
// group, or creates it for a firing batch unless the batch is stale (a
// resolved batch of the group received after it is already recorded).
// Should an incident of the group be opened meanwhile (a reopen), the
// partial unique index stops the insert; the batch then waits for it to
// commit and joins it.
func lockOrCreateOpenIncident(ctx context.Context, tx pgx.Tx, integrationID int64, channel, escalation string,
	b oncall.AlertBatch) (openIncident, error) {
	const attempts = 5
	for range attempts {
		var open openIncident
		err := tx.QueryRow(ctx, `
			SELECT id, severity FROM incidents
			WHERE integration_id = $1 AND group_key = $2 AND status <> 'resolved'
			FOR UPDATE`, integrationID, b.GroupKey).Scan(&open.id, &open.severity)
		if err == nil {
			return open, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return openIncident{}, fmt.Errorf("find open incident of group %q: %w", b.GroupKey, err)
		}
		if !opensIncident(b) {
			return openIncident{}, nil
		}
		var stale bool
		err = tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM alert_batches
			               WHERE integration_id = $1 AND group_key = $2 AND status = 'resolved'
			                 AND received_at > COALESCE($3, now()))`,
			integrationID, b.GroupKey, nullTime(b.ReceivedAt)).Scan(&stale)
		if err != nil {
			return openIncident{}, fmt.Errorf("look for a later resolved batch of group %q: %w", b.GroupKey, err)
		}
		if stale {
			return openIncident{stale: true}, nil
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO incidents (integration_id, group_key, title, message, severity, link, image_url, labels,
			                       alert_count, channel, escalation)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (integration_id, group_key) WHERE status <> 'resolved' DO NOTHING
			RETURNING id`,
			integrationID, b.GroupKey, b.Title, b.Message, b.Severity, b.Link, b.ImageURL, jsonObject(b.Labels),
			len(b.Alerts), channel, escalation).Scan(&open.id)
		if err == nil {
			return openIncident{id: open.id, severity: b.Severity, created: true}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return openIncident{}, fmt.Errorf("create incident of group %q: %w", b.GroupKey, err)
		}
		// Another transaction created it and committed meanwhile: join it.
	}
	return openIncident{}, fmt.Errorf("group %q: open incident kept changing, gave up after %d attempts",
		b.GroupKey, attempts)
}

// insertAlerts stores each alert and, if latest, the status of its
// fingerprint; otherwise (a batch delivered late) only the status of a
// fingerprint the incident has not seen yet.
func insertAlerts(ctx context.Context, tx pgx.Tx, incidentID int64, b oncall.AlertBatch, latest bool) error {
	if len(b.Alerts) == 0 {
		return nil
	}
	var batch pgx.Batch
	for _, a := range b.Alerts {
		batch.Queue(`
			INSERT INTO alerts (incident_id, batch_id, fingerprint, status, title, message, severity, link, image_url,
			                    labels, annotations, starts_at, ends_at, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, COALESCE($14, now()))`,
			incidentID, b.ID, a.Fingerprint, a.Status, a.Title, a.Message, a.Severity, a.Link, a.ImageURL,
			jsonObject(a.Labels), jsonObject(a.Annotations), nullTime(a.StartsAt), nullTime(a.EndsAt),
			nullTime(b.ReceivedAt))
		onConflict := "DO UPDATE SET status = EXCLUDED.status, updated_at = now()"
		if !latest {
			onConflict = "DO NOTHING"
		}
		batch.Queue(`
			INSERT INTO incident_alerts (incident_id, fingerprint, status) VALUES ($1, $2, $3)
			ON CONFLICT (incident_id, fingerprint) `+onConflict,
			incidentID, a.Fingerprint, a.Status)
	}
	return tx.SendBatch(ctx, &batch).Close()
}

func addEvent(ctx context.Context, tx pgx.Tx, incidentID int64, kind oncall.EventKind, actor oncall.Actor, note string) error {
	return insertEvent(ctx, tx, oncall.Event{IncidentID: incidentID, Kind: kind, Actor: actor, Note: note})
}

// insertEvent adds ev (its ID and At are the database's) to its incident's
// timeline.
func insertEvent(ctx context.Context, tx pgx.Tx, ev oncall.Event) error {
	kind := ev.Kind
	_, err := tx.Exec(ctx, `
		INSERT INTO incident_events (incident_id, kind, actor, note, target, channel) VALUES ($1, $2, $3, $4, $5, $6)`,
		ev.IncidentID, ev.Kind, ev.Actor, ev.Note, ev.Target, ev.Channel)
	if err != nil {
		return fmt.Errorf("add %s event: %w", kind, err)
	}
	return nil
}

// Incident loads an incident; oncall.ErrNotFound if there is none.
func (db *DB) Incident(ctx context.Context, id int64) (oncall.Incident, error) {
	return loadIncident(ctx, db.pool, id)
}

func loadIncident(ctx context.Context, q querier, id int64) (oncall.Incident, error) {
	var (
		inc                           oncall.Incident
		ackedAt, resolvedAt, silenced *time.Time
	)
	err := q.QueryRow(ctx, `
		SELECT i.id, g.name, g.kind, i.channel, i.group_key, i.status, i.title, i.message, i.severity, i.link,
		       i.image_url, i.labels, i.alert_count, c.firing, c.resolved, e.escalations, i.escalation, i.created_at, i.updated_at,
		       i.acked_at, COALESCE(i.acked_by, ''), i.resolved_at, COALESCE(i.resolved_by, ''), i.silenced_until
		FROM incidents i
		JOIN integrations g ON g.id = i.integration_id
		CROSS JOIN LATERAL (
			SELECT count(*) FILTER (WHERE a.status = 'firing')   AS firing,
			       count(*) FILTER (WHERE a.status = 'resolved') AS resolved
			FROM incident_alerts a WHERE a.incident_id = i.id
		) c
		CROSS JOIN LATERAL (
			SELECT count(*) AS escalations FROM incident_events e
			WHERE e.incident_id = i.id AND e.kind = 'escalated'
		) e
		WHERE i.id = $1`, id).Scan(
		&inc.ID, &inc.Integration, &inc.Kind, &inc.Channel, &inc.GroupKey, &inc.Status, &inc.Title, &inc.Message,
		&inc.Severity, &inc.Link, &inc.ImageURL, &inc.Labels, &inc.AlertCount, &inc.Firing, &inc.Resolved, &inc.Escalations,
		&inc.Escalation, &inc.CreatedAt, &inc.UpdatedAt, &ackedAt, &inc.AckedBy, &resolvedAt, &inc.ResolvedBy, &silenced)
	if errors.Is(err, pgx.ErrNoRows) {
		return oncall.Incident{}, fmt.Errorf("incident %d: %w", id, oncall.ErrNotFound)
	}
	if err != nil {
		return oncall.Incident{}, fmt.Errorf("load incident %d: %w", id, err)
	}
	inc.CreatedAt, inc.UpdatedAt = inc.CreatedAt.UTC(), inc.UpdatedAt.UTC()
	inc.AckedAt, inc.ResolvedAt, inc.SilencedUntil = derefTime(ackedAt), derefTime(resolvedAt), derefTime(silenced)
	return inc, nil
}

// transition is what an action does to an incident in one of the statuses
// it applies to.
type transition struct {
	from  []oncall.IncidentStatus
	event oncall.EventKind
	// set is the SET list of the update ($2 is the actor when withActor);
	// empty when the action only records an event.
	set       string
	withActor bool
}

func transitionOf(a oncall.Action) (transition, bool) {
	switch a {
	case oncall.ActionAcknowledge:
		return transition{
			from:  []oncall.IncidentStatus{oncall.StatusTriggered},
			event: oncall.EventAcknowledged,
			set:   "status = 'acknowledged', acked_at = clock_timestamp(), acked_by = $2", withActor: true,
		}, true
	case oncall.ActionUnacknowledge:
		return transition{
			from:  []oncall.IncidentStatus{oncall.StatusAcknowledged},
			event: oncall.EventUnacknowledged,
			set:   "status = 'triggered', acked_at = NULL, acked_by = NULL",
		}, true
	case oncall.ActionResolve:
		return transition{
			from:  []oncall.IncidentStatus{oncall.StatusTriggered, oncall.StatusAcknowledged},
			event: oncall.EventResolved,
			set:   "status = 'resolved', resolved_at = now(), resolved_by = $2", withActor: true,
		}, true
	case oncall.ActionReopen:
		return transition{
			from:  []oncall.IncidentStatus{oncall.StatusResolved},
			event: oncall.EventReopened,
			set: "status = 'triggered', acked_at = NULL, acked_by = NULL, resolved_at = NULL, resolved_by = NULL, " +
				"silenced_until = NULL", // a silence ends with the incident it silenced
		}, true
	case oncall.ActionEscalate:
		return transition{
			from:  []oncall.IncidentStatus{oncall.StatusTriggered, oncall.StatusAcknowledged},
			event: oncall.EventEscalated,
		}, true
	}
	return transition{}, false
}

// errKeySeen rolls back a transition whose idempotency key another
// transaction recorded meanwhile.
var errKeySeen = errors.New("idempotency key already used")

// Transition applies an action to an incident in one transaction. key, if
// not empty, is an idempotency key: an action whose key was recorded before
// changes nothing. changed reports whether an event was written; an action
// that does not apply to the incident's status changes nothing. Reopening an
// incident whose group has another open incident is oncall.ErrConflict.
func (db *DB) Transition(ctx context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (
	inc oncall.Incident, changed bool, err error) {
	t, ok := transitionOf(a)
	if !ok {
		return oncall.Incident{}, false, fmt.Errorf("incident %d: unknown action %q", id, a)
	}
	var c textCheck
	c.text("actor", string(actor))
	c.text("idempotency key", key)
	if c.err != nil {
		return oncall.Incident{}, false, fmt.Errorf("%s incident %d: %w", a, id, c.err)
	}

	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		changed = false
		var (
			status        oncall.IncidentStatus
			integrationID int64
			groupKey      string
		)
		err := tx.QueryRow(ctx, `SELECT status, integration_id, group_key FROM incidents WHERE id = $1 FOR UPDATE`,
			id).Scan(&status, &integrationID, &groupKey)
		if errors.Is(err, pgx.ErrNoRows) {
			return oncall.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock incident: %w", err)
		}

		seen, err := keySeen(ctx, tx, key)
		if err != nil {
			return err
		}
		if seen || !slices.Contains(t.from, status) {
			inc, err = loadIncident(ctx, tx, id)
			return err
		}

		if a == oncall.ActionReopen {
			var other bool
			err := tx.QueryRow(ctx, `
				SELECT EXISTS (SELECT 1 FROM incidents
				               WHERE integration_id = $1 AND group_key = $2 AND status <> 'resolved' AND id <> $3)`,
				integrationID, groupKey, id).Scan(&other)
			if err != nil {
				return fmt.Errorf("look for another open incident: %w", err)
			}
			if other {
				return fmt.Errorf("group %q has another open incident: %w", groupKey, oncall.ErrConflict)
			}
		}
		if t.set != "" {
			args := []any{id}
			if t.withActor {
				args = append(args, actor)
			}
			_, err := tx.Exec(ctx, "UPDATE incidents SET "+t.set+", updated_at = now() WHERE id = $1", args...)
			if isViolation(err, uniqueViolation) { // a new incident of the group was opened meanwhile
				return fmt.Errorf("group %q has another open incident: %w", groupKey, oncall.ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("update incident: %w", err)
			}
		}
		var eventID int64
		err = tx.QueryRow(ctx, `
			INSERT INTO incident_events (incident_id, kind, actor, dedup_key) VALUES ($1, $2, $3, NULLIF($4, ''))
			ON CONFLICT (dedup_key) DO NOTHING
			RETURNING id`, id, t.event, actor, key).Scan(&eventID)
		if errors.Is(err, pgx.ErrNoRows) {
			return errKeySeen
		}
		if err != nil {
			return fmt.Errorf("add %s event: %w", t.event, err)
		}
		changed = true
		inc, err = loadIncident(ctx, tx, id)
		return err
	})
	if errors.Is(err, errKeySeen) {
		inc, err = db.Incident(ctx, id)
		changed = false
	}
	if err != nil {
		return oncall.Incident{}, false, fmt.Errorf("%s incident %d: %w", a, id, err)
	}
	return inc, changed, nil
}

// Events returns the timeline of an incident, oldest first.
func (db *DB) Events(ctx context.Context, incidentID int64) ([]oncall.Event, error) {
	evs, err := queryEvents(ctx, db.pool, `
		SELECT `+eventColumns+` FROM incident_events
		WHERE incident_id = $1 ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("load events of incident %d: %w", incidentID, err)
	}
	return evs, nil
}

func queryEvents(ctx context.Context, q querier, sql string, args ...any) ([]oncall.Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (oncall.Event, error) {
		return scanEvent(row)
	})
}

const eventColumns = `id, incident_id, kind, actor, note, target, channel, created_at`

func scanEvent(row pgx.Row, extra ...any) (oncall.Event, error) {
	var e oncall.Event
	err := row.Scan(append([]any{&e.ID, &e.IncidentID, &e.Kind, &e.Actor, &e.Note, &e.Target, &e.Channel, &e.At},
		extra...)...)
	e.At = e.At.UTC()
	return e, err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// BatchOutcome returns what processing a batch did; oncall.ErrNotFound
// when no batch of that id is stored (not processed yet, or never
// accepted).
func (db *DB) BatchOutcome(ctx context.Context, batchID string) (oncall.BatchOutcome, error) {
	var (
		o          oncall.BatchOutcome
		incidentID *int64
		groupKey   *string
		outcome    *string
	)
	err := db.pool.QueryRow(ctx, `
		SELECT incident_id, group_key, outcome, processed_at FROM alert_batches WHERE id = $1`, batchID).
		Scan(&incidentID, &groupKey, &outcome, &o.ProcessedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return oncall.BatchOutcome{}, fmt.Errorf("batch %q: %w", batchID, oncall.ErrNotFound)
	}
	if err != nil {
		return oncall.BatchOutcome{}, fmt.Errorf("load outcome of batch %q: %w", batchID, err)
	}
	o.Processed, o.IncidentID, o.GroupKey, o.Action = true, deref(incidentID), derefString(groupKey), derefString(outcome)
	o.ProcessedAt = o.ProcessedAt.UTC()
	return o, nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
