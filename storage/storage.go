// Package storage keeps incidents, their alerts and timelines, and the Slack
// messages that show them in PostgreSQL, the source of truth. The schema is
// applied by Migrate from the SQL files embedded from migrations/.
package storage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrInvalidText means a string cannot be stored: PostgreSQL text holds
// neither NUL bytes nor invalid UTF-8.
var ErrInvalidText = errors.New("text contains a NUL byte or invalid UTF-8")

// DB is the database. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	// locks holds the connections that hold incident locks (WithIncidentLock),
	// apart from pool so that lock holders can never take every connection
	// the work under their locks needs.
	locks *pgxpool.Pool
}

// Open prepares a connection pool for the database at url. It does not
// connect yet (Ping does) and does not migrate (Migrate does), so a process
// can start while the database is down.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	lockCfg := cfg.Copy()
	lockCfg.MinConns = 0
	locks, err := pgxpool.NewWithConfig(ctx, lockCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database lock pool: %w", err)
	}
	return &DB{pool: pool, locks: locks}, nil
}

// Migrate applies the pending migrations. A Postgres session lock makes
// replicas that migrate at the same time take turns.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Poll for the lock every second, for up to 10 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return fmt.Errorf("migrate: create locker: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool) // closing it leaves the pool open
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		slog.InfoContext(ctx, "applied database migration",
			"version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes every connection.
func (db *DB) Close() {
	db.locks.Close()
	db.pool.Close()
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// isViolation reports whether err is the violation of a constraint of the
// given SQLSTATE class, e.g. "23505" (unique) or "23503" (foreign key).
func isViolation(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// textCheck collects the first string that PostgreSQL text cannot hold.
type textCheck struct{ err error }

func (c *textCheck) text(field, s string) {
	if c.err == nil && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
		c.err = fmt.Errorf("%s: %w", field, ErrInvalidText)
	}
}

func (c *textCheck) labels(field string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c.text(field+" key", k)
		c.text(fmt.Sprintf("%s[%q]", field, k), m[k])
	}
}

// jsonObject keeps a nil map from becoming JSON null.
func jsonObject(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
