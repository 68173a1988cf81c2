package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
)

// AddOverride stores an override and returns it as stored: with its ID,
// CreatedAt (now, unless o.CreatedAt is set) and times in UTC, to the
// microsecond. The span must not be empty. The same live override (schedule,
// person, start and end) twice is oncall.ErrConflict.
func (db *DB) AddOverride(ctx context.Context, o oncall.Override) (oncall.Override, error) {
	if err := validateOverride(o); err != nil {
		return oncall.Override{}, fmt.Errorf("add override to schedule %q: %w", o.Schedule, err)
	}
	err := db.pool.QueryRow(ctx, `
		INSERT INTO schedule_overrides (schedule, person, starts_at, ends_at, created_by, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))
		RETURNING id, starts_at, ends_at, created_at`,
		o.Schedule, o.Person, o.Start, o.End, string(o.CreatedBy), o.Reason, nullTime(o.CreatedAt),
	).Scan(&o.ID, &o.Start, &o.End, &o.CreatedAt)
	if isViolation(err, uniqueViolation) {
		return oncall.Override{}, fmt.Errorf("add override to schedule %q: the same override exists: %w", o.Schedule, oncall.ErrConflict)
	}
	if err != nil {
		return oncall.Override{}, fmt.Errorf("add override to schedule %q: %w", o.Schedule, err)
	}
	o.Start, o.End, o.CreatedAt = o.Start.UTC(), o.End.UTC(), o.CreatedAt.UTC()
	return o, nil
}

func validateOverride(o oncall.Override) error {
	switch {
	case o.Schedule == "":
		return errors.New("empty schedule")
	case o.Person == "":
		return errors.New("empty person")
	case o.Start.IsZero() || o.End.IsZero():
		return errors.New("start and end are required")
	case !o.End.After(o.Start):
		return fmt.Errorf("end %s is not after start %s", o.End.Format(time.RFC3339), o.Start.Format(time.RFC3339))
	}
	var c textCheck
	c.text("schedule", o.Schedule)
	c.text("person", o.Person)
	c.text("created by", string(o.CreatedBy))
	c.text("reason", o.Reason)
	return c.err
}

// CancelOverride cancels an override; oncall.ErrNotFound if there is no
// such override or it is already cancelled.
func (db *DB) CancelOverride(ctx context.Context, id int64, by oncall.Actor) error {
	var c textCheck
	c.text("cancelled by", string(by))
	if c.err != nil {
		return fmt.Errorf("cancel override %d: %w", id, c.err)
	}
	tag, err := db.pool.Exec(ctx, `
		UPDATE schedule_overrides SET cancelled_at = now(), cancelled_by = $2
		WHERE id = $1 AND cancelled_at IS NULL`, id, string(by))
	if err != nil {
		return fmt.Errorf("cancel override %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("cancel override %d: %w", id, oncall.ErrNotFound)
	}
	return nil
}

// Override loads an override that is not cancelled; oncall.ErrNotFound if
// there is none. It is how a caller checks who made an override before
// cancelling it.
func (db *DB) Override(ctx context.Context, id int64) (oncall.Override, error) {
	rows, err := db.pool.Query(ctx, selectOverrides+`WHERE id = $1 AND cancelled_at IS NULL`, id)
	if err != nil {
		return oncall.Override{}, fmt.Errorf("load override %d: %w", id, err)
	}
	o, err := pgx.CollectExactlyOneRow(rows, scanOverride)
	if errors.Is(err, pgx.ErrNoRows) {
		return oncall.Override{}, fmt.Errorf("load override %d: %w", id, oncall.ErrNotFound)
	}
	if err != nil {
		return oncall.Override{}, fmt.Errorf("load override %d: %w", id, err)
	}
	return o, nil
}

// Overrides returns the overrides of a schedule that are not cancelled and
// overlap [from, to), sorted by start, then ID. A zero to means no end.
func (db *DB) Overrides(ctx context.Context, schedule string, from, to time.Time) ([]oncall.Override, error) {
	rows, err := db.pool.Query(ctx, selectOverrides+`
		WHERE schedule = $1 AND cancelled_at IS NULL
		  AND ends_at > $2 AND ($3::timestamptz IS NULL OR starts_at < $3)
		ORDER BY starts_at, id`, schedule, from, nullTime(to))
	if err != nil {
		return nil, fmt.Errorf("list overrides of schedule %q: %w", schedule, err)
	}
	out, err := pgx.CollectRows(rows, scanOverride)
	if err != nil {
		return nil, fmt.Errorf("list overrides of schedule %q: %w", schedule, err)
	}
	return out, nil
}

// OverridesFor returns the overrides of every schedule that put person on
// call, are not cancelled and end after from, sorted by start, then ID.
func (db *DB) OverridesFor(ctx context.Context, person string, from time.Time) ([]oncall.Override, error) {
	rows, err := db.pool.Query(ctx, selectOverrides+`
		WHERE person = $1 AND cancelled_at IS NULL AND ends_at > $2
		ORDER BY starts_at, id`, person, from)
	if err != nil {
		return nil, fmt.Errorf("list overrides of %q: %w", person, err)
	}
	out, err := pgx.CollectRows(rows, scanOverride)
	if err != nil {
		return nil, fmt.Errorf("list overrides of %q: %w", person, err)
	}
	return out, nil
}

const selectOverrides = `
	SELECT id, schedule, person, starts_at, ends_at, created_by, reason, created_at
	FROM schedule_overrides `

func scanOverride(row pgx.CollectableRow) (oncall.Override, error) {
	var o oncall.Override
	var by string
	if err := row.Scan(&o.ID, &o.Schedule, &o.Person, &o.Start, &o.End, &by, &o.Reason, &o.CreatedAt); err != nil {
		return oncall.Override{}, err
	}
	o.CreatedBy = oncall.Actor(by)
	o.Start, o.End, o.CreatedAt = o.Start.UTC(), o.End.UTC(), o.CreatedAt.UTC()
	return o, nil
}
