package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

func TestSlackMessage(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	id := newIncident(t, db, "slack")

	if _, ok, err := db.SlackMessage(t.Context(), id); err != nil || ok {
		t.Fatalf("before any save: ok %v, %v; want none", ok, err)
	}
	saves := []SlackMessage{
		{IncidentID: id, Channel: "C0PROM", TS: "1700000000.000100", Hash: "h1"},
		{IncidentID: id, Channel: "C0PROM", TS: "1700000000.000100", Hash: "h2"},  // updated
		{IncidentID: id, Channel: "C0MOVED", TS: "1700000099.000200", Hash: "h3"}, // reposted
	}
	for _, m := range saves {
		if err := db.SaveSlackMessage(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		got, ok, err := db.SlackMessage(t.Context(), id)
		if err != nil || !ok || got != m {
			t.Errorf("after saving %+v: %+v, ok %v, %v", m, got, ok, err)
		}
	}

	tests := []struct {
		name string
		m    SlackMessage
		is   error
	}{
		{"unknown incident", SlackMessage{IncidentID: 1 << 40, Channel: "C", TS: "1"}, oncall.ErrNotFound},
		{"NUL in hash", SlackMessage{IncidentID: id, Channel: "C", TS: "1", Hash: "\x00"}, ErrInvalidText},
	}
	for _, tt := range tests {
		if err := db.SaveSlackMessage(t.Context(), tt.m); !errors.Is(err, tt.is) {
			t.Errorf("%s: SaveSlackMessage = %v, want %v", tt.name, err, tt.is)
		}
	}
	if got, _, _ := db.SlackMessage(t.Context(), id); got.Hash != "h3" {
		t.Errorf("rejected save changed the message: %+v", got)
	}
}

func TestUnpostedEvents(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	id := newIncident(t, db, "events")
	if _, _, err := db.Transition(t.Context(), id, oncall.ActionAcknowledge, oncall.SlackActor("U1"), ""); err != nil {
		t.Fatal(err)
	}
	other := newIncident(t, db, "other")

	unposted := func() []oncall.EventKind {
		t.Helper()
		evs, err := db.UnpostedEvents(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []oncall.EventKind
		for _, e := range evs {
			if e.Claimed {
				t.Errorf("event %d listed as claimed before any claim", e.ID)
			}
			if e.IncidentID != id {
				t.Errorf("event %d of incident %d listed for %d", e.ID, e.IncidentID, id)
			}
			kinds = append(kinds, e.Kind)
		}
		return kinds
	}
	want := []oncall.EventKind{oncall.EventCreated, oncall.EventAcknowledged}
	if got := unposted(); !slices.Equal(got, want) {
		t.Fatalf("unposted %v, want %v", got, want)
	}
	evs, err := db.Events(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	ack := evs[1]
	if ack.Actor != oncall.SlackActor("U1") || ack.At.IsZero() || ack.At.Before(evs[0].At) {
		t.Errorf("acknowledged event %+v after created %+v", ack, evs[0])
	}

	if err := db.MarkEventPosted(t.Context(), evs[0].ID, "1700000000.000300"); err != nil {
		t.Fatal(err)
	}
	if got := unposted(); !slices.Equal(got, want[1:]) {
		t.Errorf("after posting the first: unposted %v, want %v", got, want[1:])
	}
	if n, err := db.UnpostedEvents(t.Context(), other); err != nil || len(n) != 1 {
		t.Errorf("other incident: %d unposted, %v; want 1", len(n), err)
	}
	if err := db.MarkEventPosted(t.Context(), 1<<40, "1"); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("MarkEventPosted of a missing event: %v, want ErrNotFound", err)
	}
	if all, _ := db.Events(t.Context(), id); len(all) != 2 {
		t.Errorf("Events lists %d events, want 2 (posted ones included)", len(all))
	}
}

// incidentLocks counts the incident locks of the database, held or awaited.
const incidentLocks = `
	SELECT count(*) FROM pg_locks
	WHERE locktype = 'advisory' AND classid::bigint = $1
	  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// waitForLockWaiters waits until n sessions wait for an incident lock.
func waitForLockWaiters(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := scalar[int](t, db, incidentLocks+` AND NOT granted`, incidentLockSpace)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for an incident lock, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWithIncidentLockSerializes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	var (
		mu  sync.Mutex
		log []string
	)
	record := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }

	firstIn, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := db.WithIncidentLock(t.Context(), 7, func(ctx context.Context) error {
			record("first in")
			close(firstIn)
			<-release
			record("first out")
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	<-firstIn

	// Another incident is not held up by the first lock, and fn may use
	// the database while it holds the lock.
	err := db.WithIncidentLock(t.Context(), 8, func(ctx context.Context) error {
		_, err := db.Incident(ctx, 1)
		if errors.Is(err, oncall.ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		t.Fatalf("lock of another incident: %v", err)
	}

	wg.Go(func() {
		err := db.WithIncidentLock(t.Context(), 7, func(ctx context.Context) error {
			record("second in")
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	waitForLockWaiters(t, db, 1)
	mu.Lock()
	entered := slices.Clone(log)
	mu.Unlock()
	close(release)
	wg.Wait()

	if want := []string{"first in"}; !slices.Equal(entered, want) {
		t.Errorf("while the first held the lock: %v, want %v", entered, want)
	}
	if want := []string{"first in", "first out", "second in"}; !slices.Equal(log, want) {
		t.Errorf("order %v, want %v", log, want)
	}
}

func TestWithIncidentLockErrorsAndCancel(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	errFn := errors.New("sync failed")
	if err := db.WithIncidentLock(t.Context(), 9, func(context.Context) error { return errFn }); err != errFn {
		t.Errorf("WithIncidentLock = %v, want fn's error as is", err)
	}

	// Waiting for a held lock ends with the context; the lock stays usable.
	held, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = db.WithIncidentLock(t.Context(), 9, func(context.Context) error {
			close(held)
			<-release
			return nil
		})
	})
	<-held
	ctx, cancel := context.WithCancel(t.Context())
	waited := make(chan error, 1)
	go func() {
		waited <- db.WithIncidentLock(ctx, 9, func(context.Context) error {
			t.Error("fn ran without the lock")
			return nil
		})
	}()
	waitForLockWaiters(t, db, 1)
	cancel()
	if err := <-waited; err == nil {
		t.Error("cancelled wait returned nil")
	}
	close(release)
	wg.Wait()

	ran := false
	if err := db.WithIncidentLock(t.Context(), 9, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("lock after a cancelled wait: ran %v, %v", ran, err)
	}
	if n := scalar[int](t, db, incidentLocks, incidentLockSpace); n != 0 {
		t.Errorf("%d incident locks still held", n)
	}
}

// TestClaimEventPost: a claimed event stays unposted, marked claimed, until
// its ts is saved; a posted event cannot be claimed back.
func TestClaimEventPost(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	id := newIncident(t, db, "claims")
	for _, a := range []oncall.Action{oncall.ActionAcknowledge, oncall.ActionResolve} {
		if _, _, err := db.Transition(t.Context(), id, a, oncall.SlackActor("U1"), ""); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := db.Events(t.Context(), id)
	if err != nil || len(evs) != 3 {
		t.Fatalf("events: %+v, %v; want created, acknowledged, resolved", evs, err)
	}
	created, acked, resolved := evs[0].ID, evs[1].ID, evs[2].ID

	// unposted lists the unposted events as "id" or "id claimed".
	unposted := func() []string {
		t.Helper()
		evs, err := db.UnpostedEvents(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			s := fmt.Sprint(e.ID)
			if e.Claimed {
				s += " claimed"
			}
			out = append(out, s)
		}
		return out
	}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"claim", func() error { return db.ClaimEventPost(t.Context(), acked) }, []string{
			fmt.Sprint(created), fmt.Sprint(acked, " claimed"), fmt.Sprint(resolved)}},
		{"claim again", func() error { return db.ClaimEventPost(t.Context(), acked) }, []string{
			fmt.Sprint(created), fmt.Sprint(acked, " claimed"), fmt.Sprint(resolved)}},
		{"post the claimed", func() error { return db.MarkEventPosted(t.Context(), acked, "1700000000.000400") }, []string{
			fmt.Sprint(created), fmt.Sprint(resolved)}},
		{"claim a posted event", func() error { return db.ClaimEventPost(t.Context(), acked) }, []string{
			fmt.Sprint(created), fmt.Sprint(resolved)}},
		{"post without a claim", func() error { return db.MarkEventPosted(t.Context(), created, "1700000000.000100") }, []string{
			fmt.Sprint(resolved)}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := unposted(); !slices.Equal(got, st.want) {
			t.Errorf("after %s: unposted %q, want %q", st.name, got, st.want)
		}
	}
	if got := scalar[string](t, db, `SELECT slack_ts FROM incident_events WHERE id = $1`, acked); got != "1700000000.000400" {
		t.Errorf("claiming a posted event changed its ts to %q", got)
	}

	if err := db.ClaimEventPost(t.Context(), 1<<40); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("ClaimEventPost of a missing event: %v, want ErrNotFound", err)
	}
	// An empty ts would read as a claim.
	if err := db.MarkEventPosted(t.Context(), resolved, ""); err == nil {
		t.Error("MarkEventPosted with an empty ts: got nil error")
	}
	if got := unposted(); !slices.Equal(got, []string{fmt.Sprint(resolved)}) {
		t.Errorf("after refused calls: unposted %q", got)
	}
}
