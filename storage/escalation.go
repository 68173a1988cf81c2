package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
)

// EscalationStateKind is where an incident's escalation chain is.
type EscalationStateKind string

const (
	// EscalationRunning: Step is the next step to take, at NextRunAt.
	EscalationRunning EscalationStateKind = "running"
	// EscalationStopped: acknowledged or resolved. NextRunAt, if set, is
	// when an acknowledgement times out.
	EscalationStopped EscalationStateKind = "stopped"
	// EscalationExhausted: every pass ran. NextRunAt, if set, is when the
	// incident resolves itself.
	EscalationExhausted EscalationStateKind = "exhausted"
)

// EscalationState is the escalation chain of one incident.
type EscalationState struct {
	IncidentID int64
	Chain      string
	State      EscalationStateKind
	Step       int
	// Repeat only grows: each pass and each restart gets a new one, so the
	// keys of deliveries stay unique. BaseRepeat is the Repeat the current
	// run started with.
	Repeat     int
	BaseRepeat int
	// Escalate: a manual escalation asked the next run to skip waits.
	Escalate  bool
	NextRunAt time.Time // zero: nothing due
	StartedAt time.Time
	// Incident is the incident as it is in the transaction that processes
	// the row (ProcessDueEscalations); zero elsewhere.
	Incident oncall.Incident
}

// EscalationUpdate is what processing a due escalation decided.
type EscalationUpdate struct {
	State      EscalationStateKind
	Step       int
	Repeat     int
	BaseRepeat int
	NextRunAt  time.Time // zero: nothing more due
	// Unacknowledge puts an acknowledged incident back to triggered (an
	// acknowledgement that timed out), with an event by the system.
	Unacknowledge bool
	// Resolve resolves the incident (auto-resolve), with an event by the
	// system.
	Resolve bool
	// Note goes on the event of Unacknowledge or Resolve.
	Note string
	// Events are added to the incident's timeline (their IncidentID is
	// set by the store).
	Events []oncall.Event
}

// EscalationFunc decides what a due escalation does. It runs inside the
// transaction that holds the escalation row and the incident row locked;
// it must not use the database itself.
type EscalationFunc func(ctx context.Context, esc EscalationState) (EscalationUpdate, []oncall.Delivery, error)

// EscalationRetryDelay is how long an escalation whose EscalationFunc
// failed waits before it is tried again.
const EscalationRetryDelay = 30 * time.Second

// StartEscalation starts the chain of an incident at step 0, due at at.
// Starting it again changes nothing; started reports whether this call
// started it.
func (db *DB) StartEscalation(ctx context.Context, incidentID int64, chain string, at time.Time) (started bool, err error) {
	var c textCheck
	c.text("chain", chain)
	if c.err != nil {
		return false, fmt.Errorf("start escalation of incident %d: %w", incidentID, c.err)
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		started, err = insertEscalation(ctx, tx, incidentID, chain, at)
		return err
	})
	if isViolation(err, foreignKeyViolation) {
		return false, fmt.Errorf("start escalation of incident %d: %w", incidentID, oncall.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("start escalation of incident %d: %w", incidentID, err)
	}
	return started, nil
}

// startEscalation is StartEscalation inside the transaction that creates
// the incident.
func startEscalation(ctx context.Context, tx pgx.Tx, incidentID int64, chain string, at time.Time) error {
	if _, err := insertEscalation(ctx, tx, incidentID, chain, at); err != nil {
		return fmt.Errorf("start escalation: %w", err)
	}
	return nil
}

func insertEscalation(ctx context.Context, tx pgx.Tx, incidentID int64, chain string, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO incident_escalations (incident_id, chain, next_run_at, started_at)
		VALUES ($1, $2, $3, $3)
		ON CONFLICT (incident_id) DO NOTHING`, incidentID, chain, at)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// StopEscalation stops the chain of an incident (acknowledged or resolved)
// and cancels its deliveries not yet being sent (pending and queued; a
// worker moves a delivery from queued to sending only if it is still
// queued). wakeAt, if not zero, is when the engine looks at it again (an
// acknowledgement timeout). ok is false when the incident has no chain.
func (db *DB) StopEscalation(ctx context.Context, incidentID int64, wakeAt time.Time) (ok bool, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		ok, err = stopEscalationOK(ctx, tx, incidentID, wakeAt)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("stop escalation of incident %d: %w", incidentID, err)
	}
	return ok, nil
}

// stopEscalation is StopEscalation inside another transaction.
func stopEscalation(ctx context.Context, tx pgx.Tx, incidentID int64, wakeAt time.Time) error {
	_, err := stopEscalationOK(ctx, tx, incidentID, wakeAt)
	return err
}

func stopEscalationOK(ctx context.Context, tx pgx.Tx, incidentID int64, wakeAt time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE incident_escalations
		SET state = 'stopped', escalate = false, next_run_at = $2, updated_at = now()
		WHERE incident_id = $1`, incidentID, nullTime(wakeAt))
	if err != nil {
		return false, fmt.Errorf("update escalation: %w", err)
	}
	return tag.RowsAffected() == 1, cancelDeliveries(ctx, tx, incidentID)
}

func cancelDeliveries(ctx context.Context, tx pgx.Tx, incidentID int64) error {
	_, err := tx.Exec(ctx, `
		UPDATE deliveries SET status = 'cancelled'
		WHERE incident_id = $1 AND status IN ('pending', 'queued')`, incidentID)
	if err != nil {
		return fmt.Errorf("cancel deliveries: %w", err)
	}
	return nil
}

// RestartEscalation runs the chain of an incident again from step 0, due
// at at, as a new run (a new Repeat, counted afresh against the chain's
// limit). A chain running already is left as it is: the engine restarted it
// (an acknowledgement that timed out as someone unacknowledged), and a
// second run would page everyone twice. ok is false when nothing was
// restarted.
func (db *DB) RestartEscalation(ctx context.Context, incidentID int64, at time.Time) (ok bool, err error) {
	tag, err := db.pool.Exec(ctx, restartEscalationSQL, incidentID, at)
	if err != nil {
		return false, fmt.Errorf("restart escalation of incident %d: %w", incidentID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// restartEscalationSQL runs the chain of incident $1 again from step 0,
// due at $2, as a new run, unless it is running already.
const restartEscalationSQL = `
	UPDATE incident_escalations
	SET state = 'running', step = 0, repeat = repeat + 1, base_repeat = repeat + 1,
	    escalate = false, next_run_at = $2, updated_at = now()
	WHERE incident_id = $1 AND state <> 'running'`

// RepairEscalations restarts, due at at, the chains left stopped (with
// nothing due) on incidents that are triggered: an unacknowledge or reopen
// whose restart was lost (the database failed between the action and the
// restart) or landed before the acknowledgement's stop. A chain is left
// grace after its last change, for the action's own restart to land. It
// returns the incidents repaired.
func (db *DB) RepairEscalations(ctx context.Context, at time.Time, grace time.Duration) ([]int64, error) {
	rows, err := db.pool.Query(ctx, `
		UPDATE incident_escalations e
		SET state = 'running', step = 0, repeat = repeat + 1, base_repeat = repeat + 1,
		    escalate = false, next_run_at = $1, updated_at = now()
		FROM incidents i
		WHERE i.id = e.incident_id AND i.status = 'triggered'
		  AND e.state = 'stopped' AND e.next_run_at IS NULL AND e.updated_at < now() - $2::interval
		RETURNING e.incident_id`, at, grace)
	if err != nil {
		return nil, fmt.Errorf("repair escalations: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("repair escalations: %w", err)
	}
	return ids, nil
}

// NextDue returns the earliest time an escalation step or a planned page
// falls due; ok is false when nothing is.
func (db *DB) NextDue(ctx context.Context) (next time.Time, ok bool, err error) {
	var t *time.Time
	err = db.pool.QueryRow(ctx, `
		SELECT least((SELECT min(next_run_at) FROM incident_escalations),
		             (SELECT min(due_at) FROM deliveries WHERE status = 'pending'))`).Scan(&t)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up the next due escalation: %w", err)
	}
	return derefTime(t), t != nil, nil
}

// EscalateNow makes the chain of an incident due at at and marks it for a
// manual escalation: the run skips waits to the next notify step. A stopped
// or exhausted chain runs again. ok is false when the incident has no
// chain.
func (db *DB) EscalateNow(ctx context.Context, incidentID int64, at time.Time) (ok bool, err error) {
	tag, err := db.pool.Exec(ctx, `
		UPDATE incident_escalations
		SET state = 'running', escalate = true, next_run_at = $2, updated_at = now()
		WHERE incident_id = $1`, incidentID, at)
	if err != nil {
		return false, fmt.Errorf("escalate incident %d: %w", incidentID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Escalation returns the escalation chain of an incident, without
// Incident; oncall.ErrNotFound if it has none.
func (db *DB) Escalation(ctx context.Context, incidentID int64) (EscalationState, error) {
	esc, err := scanEscalation(db.pool.QueryRow(ctx, `
		SELECT `+escalationColumns+` FROM incident_escalations WHERE incident_id = $1`, incidentID))
	if errors.Is(err, pgx.ErrNoRows) {
		return EscalationState{}, fmt.Errorf("escalation of incident %d: %w", incidentID, oncall.ErrNotFound)
	}
	if err != nil {
		return EscalationState{}, fmt.Errorf("load escalation of incident %d: %w", incidentID, err)
	}
	return esc, nil
}

const escalationColumns = `incident_id, chain, state, step, repeat, base_repeat, escalate, next_run_at, started_at`

func scanEscalation(row pgx.Row) (EscalationState, error) {
	var (
		esc  EscalationState
		next *time.Time
	)
	err := row.Scan(&esc.IncidentID, &esc.Chain, &esc.State, &esc.Step, &esc.Repeat, &esc.BaseRepeat,
		&esc.Escalate, &next, &esc.StartedAt)
	esc.NextRunAt, esc.StartedAt = derefTime(next), esc.StartedAt.UTC()
	return esc, err
}

// ProcessDueEscalations processes up to limit escalations due at now, each
// in its own transaction: it claims the row (FOR UPDATE SKIP LOCKED, so
// replicas share the work and never take the same row), locks and re-reads
// the incident, calls fn, stores the update and the deliveries (a delivery
// whose key exists already is skipped) and commits. A row that another
// transaction moved on meanwhile is no longer due and is not processed, so a
// stale wake-up does nothing.
//
// When fn fails, that row's work is rolled back and it is tried again after
// EscalationRetryDelay; the others go on, and the errors are returned
// together. changed lists the incidents whose update paged someone or
// changed the incident, for announcing.
func (db *DB) ProcessDueEscalations(ctx context.Context, now time.Time, limit int, fn EscalationFunc) (
	processed int, changed []int64, err error) {
	var fnErrs []error
	for processed < limit {
		var (
			esc    EscalationState
			found  bool
			fnErr  error // fn's error, apart from the database's
			change bool
		)
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var err error
			// The row and its incident are locked together, skipping either
			// if taken: a writer holding the incident (a resolve, an action)
			// is never waited for, so the two cannot deadlock.
			esc, err = scanEscalation(tx.QueryRow(ctx, `
				SELECT `+prefixed("e.", escalationColumns)+` FROM incident_escalations e
				JOIN incidents i ON i.id = e.incident_id
				WHERE e.next_run_at <= $1
				ORDER BY e.next_run_at
				LIMIT 1
				FOR UPDATE OF e, i SKIP LOCKED`, now))
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("claim a due escalation: %w", err)
			}
			found = true
			change, fnErr, err = processEscalation(ctx, tx, esc, fn)
			if err == nil && fnErr != nil {
				return fnErr // roll back what fn's row did; retried below
			}
			return err
		})
		if !found {
			if err != nil {
				return processed, changed, errors.Join(append(fnErrs, err)...)
			}
			break
		}
		processed++
		if fnErr != nil {
			fnErrs = append(fnErrs, fmt.Errorf("escalation of incident %d: %w", esc.IncidentID, fnErr))
			if err := db.postponeEscalation(ctx, esc, now.Add(EscalationRetryDelay)); err != nil {
				return processed, changed, errors.Join(append(fnErrs, err)...)
			}
			continue
		}
		if err != nil {
			return processed, changed, errors.Join(append(fnErrs,
				fmt.Errorf("process escalation of incident %d: %w", esc.IncidentID, err))...)
		}
		if change {
			changed = append(changed, esc.IncidentID)
		}
	}
	return processed, changed, errors.Join(fnErrs...)
}

// prefixed puts prefix before each name of a comma-separated column list.
func prefixed(prefix, columns string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = prefix + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// processEscalation runs fn on one claimed row (its incident locked too) and stores what it decided.
// fnErr is fn's error; err a database error.
func processEscalation(ctx context.Context, tx pgx.Tx, esc EscalationState, fn EscalationFunc) (
	changed bool, fnErr, err error) {
	if esc.Incident, err = loadIncident(ctx, tx, esc.IncidentID); err != nil {
		return false, nil, err
	}
	up, deliveries, fnErr := fn(ctx, esc)
	if fnErr != nil {
		return false, fnErr, nil
	}
	if up.State == "" {
		return false, nil, fmt.Errorf("update of escalation without a state")
	}
	_, err = tx.Exec(ctx, `
		UPDATE incident_escalations
		SET state = $2, step = $3, repeat = $4, base_repeat = $5, next_run_at = $6, escalate = false,
		    updated_at = now()
		WHERE incident_id = $1`,
		esc.IncidentID, up.State, up.Step, up.Repeat, up.BaseRepeat, nullTime(up.NextRunAt))
	if err != nil {
		return false, nil, fmt.Errorf("update escalation: %w", err)
	}
	for _, d := range deliveries {
		inserted, err := insertDelivery(ctx, tx, d)
		if err != nil {
			return false, nil, err
		}
		changed = changed || inserted
	}
	for _, ev := range up.Events {
		ev.IncidentID = esc.IncidentID
		if err := insertEvent(ctx, tx, ev); err != nil {
			return false, nil, err
		}
		changed = true
	}
	status := esc.Incident.Status
	if up.Unacknowledge && status == oncall.StatusAcknowledged {
		if _, err := tx.Exec(ctx, `
			UPDATE incidents SET status = 'triggered', acked_at = NULL, acked_by = NULL, updated_at = now()
			WHERE id = $1`, esc.IncidentID); err != nil {
			return false, nil, fmt.Errorf("unacknowledge incident: %w", err)
		}
		if err := addEvent(ctx, tx, esc.IncidentID, oncall.EventUnacknowledged, oncall.ActorSystem, up.Note); err != nil {
			return false, nil, err
		}
		changed = true
	}
	if up.Resolve && status != oncall.StatusResolved {
		if _, err := tx.Exec(ctx, `
			UPDATE incidents SET status = 'resolved', resolved_at = now(), resolved_by = $2, updated_at = now()
			WHERE id = $1`, esc.IncidentID, oncall.ActorSystem); err != nil {
			return false, nil, fmt.Errorf("resolve incident: %w", err)
		}
		if err := addEvent(ctx, tx, esc.IncidentID, oncall.EventResolved, oncall.ActorSystem, up.Note); err != nil {
			return false, nil, err
		}
		if err := cancelDeliveries(ctx, tx, esc.IncidentID); err != nil {
			return false, nil, err
		}
		changed = true
	}
	return changed, nil, nil
}

// postponeEscalation makes a row whose processing failed due again at at,
// unless something moved it on meanwhile.
func (db *DB) postponeEscalation(ctx context.Context, esc EscalationState, at time.Time) error {
	_, err := db.pool.Exec(ctx, `
		UPDATE incident_escalations SET next_run_at = $3, updated_at = now()
		WHERE incident_id = $1 AND next_run_at = $2`, esc.IncidentID, esc.NextRunAt, at)
	if err != nil {
		return fmt.Errorf("postpone escalation of incident %d: %w", esc.IncidentID, err)
	}
	return nil
}

func insertDelivery(ctx context.Context, tx pgx.Tx, d oncall.Delivery) (bool, error) {
	var c textCheck
	c.text("key", d.Key)
	c.text("person", d.Person)
	if c.err != nil {
		return false, fmt.Errorf("delivery %q: %w", d.Key, c.err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO deliveries (key, incident_id, step, repeat, person, channel, due_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
		ON CONFLICT (key) DO NOTHING`,
		d.Key, d.IncidentID, d.Step, d.Repeat, d.Person, d.Channel, d.DueAt)
	if err != nil {
		return false, fmt.Errorf("insert delivery %q: %w", d.Key, err)
	}
	return tag.RowsAffected() == 1, nil
}
