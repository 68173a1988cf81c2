package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
)

// Silence pauses the paging of an open incident until until
// (oncall.UntilResolved: until it is resolved): pages not yet sent are
// cancelled, and a step of its chain that falls due meanwhile waits until
// then (the engine postpones it), to go on from where it was.
// key makes a retried request change nothing twice. changed is false when
// the incident is resolved or the key was seen.
func (db *DB) Silence(ctx context.Context, id int64, until time.Time, actor oncall.Actor, key string) (
	oncall.Incident, bool, error) {
	note := "until resolved"
	if !until.Equal(oncall.UntilResolved) {
		note = "until " + until.UTC().Format(time.RFC3339)
	}
	return db.changeSilence(ctx, id, actor, key, oncall.EventSilenced, note, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET silenced_until = $2, updated_at = now() WHERE id = $1`,
			id, until); err != nil {
			return fmt.Errorf("silence: %w", err)
		}
		return cancelDeliveries(ctx, tx, id)
	})
}

// Unsilence ends an incident's silence: a step of its chain that fell due
// meanwhile is due now; one not due yet keeps its time.
func (db *DB) Unsilence(ctx context.Context, id int64, actor oncall.Actor, key string) (oncall.Incident, bool, error) {
	return db.changeSilence(ctx, id, actor, key, oncall.EventUnsilenced, "", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET silenced_until = NULL, updated_at = now() WHERE id = $1`,
			id); err != nil {
			return fmt.Errorf("unsilence: %w", err)
		}
		_, err := tx.Exec(ctx, `
			UPDATE incident_escalations SET next_run_at = least(next_run_at, now()), updated_at = now()
			WHERE incident_id = $1 AND state = 'running'`, id)
		return err
	})
}

// changeSilence runs change on an open incident, locked, and records the
// event, unless the key was seen or the incident is resolved (or, for an
// unsilence, not silenced).
func (db *DB) changeSilence(ctx context.Context, id int64, actor oncall.Actor, key string, kind oncall.EventKind,
	note string, change func(tx pgx.Tx) error) (inc oncall.Incident, changed bool, err error) {
	var c textCheck
	c.text("actor", string(actor))
	c.text("idempotency key", key)
	if c.err != nil {
		return oncall.Incident{}, false, fmt.Errorf("%s incident %d: %w", kind, id, c.err)
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		changed = false
		var (
			status   oncall.IncidentStatus
			silenced *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT status, silenced_until FROM incidents WHERE id = $1 FOR UPDATE`, id).
			Scan(&status, &silenced)
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
		if !seen && status != oncall.StatusResolved && (kind == oncall.EventSilenced || silenced != nil) {
			if err := change(tx); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO incident_events (incident_id, kind, actor, note, dedup_key) VALUES ($1, $2, $3, $4, NULLIF($5, ''))`,
				id, kind, actor, note, key); err != nil {
				return fmt.Errorf("add %s event: %w", kind, err)
			}
			changed = true
		}
		inc, err = loadIncident(ctx, tx, id)
		return err
	})
	if err != nil {
		return oncall.Incident{}, false, fmt.Errorf("%s incident %d: %w", kind, id, err)
	}
	return inc, changed, nil
}

// MaintenanceWindow is a maintenance started from Slack.
type MaintenanceWindow struct {
	Integration string
	Until       time.Time
	StartedBy   oncall.Actor
}

// StartMaintenance puts an integration in maintenance until until (its
// alerts are stored and shown, nobody is paged); a later call replaces
// the window, and a time in the past ends it.
func (db *DB) StartMaintenance(ctx context.Context, integration string, until time.Time, by oncall.Actor) error {
	var c textCheck
	c.text("integration", integration)
	c.text("actor", string(by))
	if c.err != nil {
		return fmt.Errorf("start maintenance: %w", c.err)
	}
	_, err := db.pool.Exec(ctx, `
		INSERT INTO integration_maintenance (integration, until, started_by) VALUES ($1, $2, $3)
		ON CONFLICT (integration) DO UPDATE SET until = EXCLUDED.until, started_by = EXCLUDED.started_by,
		    started_at = now()`, integration, until, by)
	if err != nil {
		return fmt.Errorf("start maintenance of %q: %w", integration, err)
	}
	return nil
}

// Maintenance returns the maintenance windows started from Slack that
// are not over at now.
func (db *DB) Maintenance(ctx context.Context, now time.Time) ([]MaintenanceWindow, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT integration, until, started_by FROM integration_maintenance WHERE until > $1 ORDER BY integration`, now)
	if err != nil {
		return nil, fmt.Errorf("load maintenance windows: %w", err)
	}
	ws, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (MaintenanceWindow, error) {
		var w MaintenanceWindow
		err := row.Scan(&w.Integration, &w.Until, &w.StartedBy)
		w.Until = w.Until.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("load maintenance windows: %w", err)
	}
	return ws, nil
}

// LastHeartbeats returns the last heartbeat of each integration that sent
// one, by integration name.
func (db *DB) LastHeartbeats(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT g.name, h.last_seen FROM integration_heartbeats h JOIN integrations g ON g.id = h.integration_id`)
	if err != nil {
		return nil, fmt.Errorf("load heartbeats: %w", err)
	}
	out := map[string]time.Time{}
	var (
		name string
		at   time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &at}, func() error {
		out[name] = at.UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load heartbeats: %w", err)
	}
	return out, nil
}
