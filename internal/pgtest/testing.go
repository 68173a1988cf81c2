package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// shared is the one cluster of a test binary. It is package state on
// purpose: TestMain and the tests of a package have no other way to share
// it.
var shared struct {
	mu      sync.Mutex
	enabled bool // Main is running
	cluster *Cluster
	err     error
	seq     int
}

// Main runs the tests of a package that uses NewDatabase or Shared, and stops
// the cluster at the end if one was started. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.cluster = nil
	}
	return code
}

// Shared returns the cluster of the test binary, starting it on first use.
// Missing PostgreSQL programs fail the test: they are a broken setup, not a
// reason to skip.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.enabled {
		t.Fatal("pgtest: the shared cluster needs a TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	if shared.cluster == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.cluster, shared.err = Start(ctx, Options{})
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.cluster
}

// NewDatabase creates a fresh empty database in the shared cluster and
// returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	shared.mu.Lock()
	shared.seq++
	name := databaseName(shared.seq, t.Name())
	shared.mu.Unlock()

	u, err := c.CreateDatabase(t.Context(), name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// databaseName makes a unique, readable database name from a test name.
func databaseName(seq int, testName string) string {
	const maxLen = 63 // NAMEDATALEN - 1
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, testName)
	name = fmt.Sprintf("t%d_%s", seq, name)
	if len(name) > maxLen {
		name = name[:maxLen]
	}
	return name
}
