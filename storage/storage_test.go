package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testIntegrations are synced into every database of newDB.
var testIntegrations = []oncall.Integration{
	{Name: "prom", Kind: "alertmanager", Token: "prom-secret", Channel: "C0PROM", Escalation: "default"},
	{Name: "hook", Kind: "webhook", Token: "hook-secret", Channel: "C0HOOK"},
}

// newDB opens a fresh, migrated database with testIntegrations.
func newDB(t *testing.T) *DB {
	t.Helper()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "16") // room for the racing goroutines of the tests
	u.RawQuery = q.Encode()
	db := openDB(t, u.String())
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncIntegrations(t.Context(), testIntegrations); err != nil {
		t.Fatal(err)
	}
	return db
}

func openDB(t *testing.T, url string) *DB {
	t.Helper()
	db, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// scalar runs a query that returns one value.
func scalar[T any](t *testing.T, db *DB, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

var tables = []string{
	"integrations", "incidents", "alert_batches", "alerts", "incident_alerts", "incident_events", "slack_messages",
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	t.Parallel()
	db := openDB(t, pgtest.NewDatabase(t))
	if err := db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if !scalar[bool](t, db, `SELECT to_regclass($1) IS NOT NULL`, table) {
			t.Errorf("table %s missing after Migrate", table)
		}
	}
	versions := scalar[int](t, db, `SELECT count(*) FROM goose_db_version`)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got := scalar[int](t, db, `SELECT count(*) FROM goose_db_version`); got != versions {
		t.Errorf("second Migrate changed goose_db_version from %d to %d rows", versions, got)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	replicas := []*DB{openDB(t, url), openDB(t, url)}
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, db := range replicas {
		wg.Go(func() { errs[i] = db.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	applied := scalar[int](t, replicas[0], `SELECT count(*) FROM goose_db_version WHERE version_id > 0`)
	if files, _ := migrationFiles.ReadDir("migrations"); applied != len(files) {
		t.Errorf("%d migrations applied, want %d (each once)", applied, len(files))
	}
}

func TestSyncIntegrations(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	type row struct {
		kind, channel, escalation string
		enabled                   bool
		hash                      []byte
	}
	load := func(name string) row {
		var r row
		err := db.pool.QueryRow(t.Context(), `
			SELECT kind, channel, escalation, enabled, token_hash FROM integrations WHERE name = $1`, name).
			Scan(&r.kind, &r.channel, &r.escalation, &r.enabled, &r.hash)
		if err != nil {
			t.Fatalf("load integration %q: %v", name, err)
		}
		return r
	}
	sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

	// prom changes, hook goes away, grafana is new.
	err := db.SyncIntegrations(t.Context(), []oncall.Integration{
		{Name: "prom", Kind: "alertmanager", Token: "rotated", Channel: "C0NEW"},
		{Name: "grafana", Kind: "grafana", Token: "g", Channel: "C0GRAF", Escalation: "night"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want row
	}{
		{"prom", row{"alertmanager", "C0NEW", "", true, sum("rotated")}},
		{"hook", row{"webhook", "C0HOOK", "", false, sum("hook-secret")}},
		{"grafana", row{"grafana", "C0GRAF", "night", true, sum("g")}},
	}
	for _, tt := range tests {
		got := load(tt.name)
		if got.kind != tt.want.kind || got.channel != tt.want.channel || got.escalation != tt.want.escalation ||
			got.enabled != tt.want.enabled || !bytes.Equal(got.hash, tt.want.hash) {
			t.Errorf("integration %s = %+v, want %+v", tt.name, got, tt.want)
		}
	}

	// Listed again: enabled again.
	if err := db.SyncIntegrations(t.Context(), testIntegrations); err != nil {
		t.Fatal(err)
	}
	if !load("hook").enabled || load("grafana").enabled {
		t.Errorf("after re-sync: hook enabled %v (want true), grafana enabled %v (want false)",
			load("hook").enabled, load("grafana").enabled)
	}

	err = db.SyncIntegrations(t.Context(), []oncall.Integration{{Name: "x", Kind: "webhook"}, {Name: "x", Kind: "grafana"}})
	if err == nil {
		t.Error("SyncIntegrations accepted a duplicate name")
	}
}

// race runs fn in n goroutines that all start by waiting for a lock on
// table, and lets them go together once every one of them waits, so that
// they contend rather than run one after the other.
func race(t *testing.T, db *DB, table string, n int, fn func(i int)) {
	t.Helper()
	tx, err := db.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+table+" IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting := scalar[int](t, db, `
			SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND relation = $1::regclass AND NOT granted`, table)
		if waiting == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d goroutines wait for table %s", waiting, n, table)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}
