package pgtest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func query(t *testing.T, url, sql string) (string, error) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	err = conn.QueryRow(t.Context(), sql).Scan(&s)
	return s, err
}

func TestNewDatabaseIsFreshAndSeparate(t *testing.T) {
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	for _, u := range []string{a, b} {
		got, err := query(t, u, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public'")
		if err != nil {
			t.Fatalf("query %s: %v", u, err)
		}
		if got != "0" {
			t.Errorf("%s has %s tables, want 0", u, got)
		}
	}
	conn, err := pgx.Connect(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	got, err := query(t, b, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'only_in_a'")
	if err != nil || got != "0" {
		t.Errorf("table of database a visible in b: %q, %v", got, err)
	}
}

func TestServerSettings(t *testing.T) {
	u := NewDatabase(t)
	tests := []struct{ setting, want string }{
		{"listen_addresses", "127.0.0.1"},
		{"fsync", "off"},
		{"server_encoding", "UTF8"},
		{"data_directory", Shared(t).DataDir()},
	}
	for _, tt := range tests {
		got, err := query(t, u, "SELECT current_setting('"+tt.setting+"')")
		if err != nil {
			t.Fatalf("%s: %v", tt.setting, err)
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.setting, got, tt.want)
		}
	}
	if fi, err := os.Stat(Shared(t).LogFile()); err != nil || fi.Size() == 0 {
		t.Errorf("server log %s missing or empty: %v", Shared(t).LogFile(), err)
	}
}

// TestStopAndStartServer plays "Postgres down" and "Postgres back" on its own
// cluster: same port, same data.
func TestStopAndStartServer(t *testing.T) {
	ctx := t.Context()
	c, err := Start(ctx, Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Dir(c.DataDir())
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stop left %s behind: %v", tmp, err)
		}
	})
	u, err := c.CreateDatabase(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE survivor (x text); INSERT INTO survivor VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := c.StopServer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, u, "SELECT 'up'"); err == nil {
		t.Fatal("query succeeded with the server stopped")
	}
	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := query(t, u, "SELECT x FROM survivor"); err != nil || got != "still here" {
		t.Fatalf("after restart: %q, %v", got, err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := query(t, u, "SELECT current_setting('fsync')"); err != nil || got != "on" {
		t.Errorf("Durable cluster after Restart: fsync %q, %v; want on", got, err)
	}
}

func TestStartFailureShowsServerLog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	// Not t.TempDir: as root, the postgres account must be able to enter
	// every parent directory.
	dir, err := os.MkdirTemp("", "pgtest-failure-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		acct, err := serverAccount()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, int(acct.Uid), int(acct.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Start(t.Context(), Options{Dir: dir, Port: port})
	if err == nil {
		c.Stop()
		t.Fatalf("Start on busy port %d succeeded", port)
	}
	for _, want := range []string{"server log", "could not bind"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, tmpPattern+"*")); len(left) != 0 {
		t.Errorf("failed Start left %v behind", left)
	}
}

func TestFindBinariesMissing(t *testing.T) {
	_, err := findBinaries(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "initdb") {
		t.Fatalf("findBinaries(empty dir) = %v, want an error naming initdb", err)
	}
}

func TestDatabaseName(t *testing.T) {
	tests := []struct {
		seq  int
		test string
		want string
	}{
		{1, "TestX", "t1_testx"},
		{12, "TestRecord/duplicate batch-ID", "t12_testrecord_duplicate_batch_id"},
		{3, strings.Repeat("A", 100), "t3_" + strings.Repeat("a", 60)},
	}
	for _, tt := range tests {
		if got := databaseName(tt.seq, tt.test); got != tt.want {
			t.Errorf("databaseName(%d, %q) = %q, want %q", tt.seq, tt.test, got, tt.want)
		}
	}
}
