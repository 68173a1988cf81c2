// Package pgtest runs a throwaway PostgreSQL cluster with the system's initdb
// and pg_ctl (no Docker), for tests and the local development run.
//
// The server listens on 127.0.0.1 on a free port (and on a unix socket in its
// data directory), trusts every local connection and logs to a file in its
// data directory. When the process runs as root (as CI does), initdb and the
// server run as the unprivileged "postgres" account, because initdb refuses
// to run as root.
package pgtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name of the cluster's bootstrap superuser.
const Superuser = "postgres"

// Options configure Start. The zero value is a fast, disposable cluster.
type Options struct {
	// Dir is where the temporary directory of the cluster is created;
	// empty means os.TempDir().
	Dir string
	// DataDir, when set, is used as the data directory instead of a
	// temporary one: it is initialized only if it does not hold a cluster
	// yet, and it is never removed.
	DataDir string
	// Keep leaves the temporary directory in place after Stop, for a look
	// at the data and the server log.
	Keep bool
	// Port to listen on; 0 picks a free one.
	Port int
	// Durable keeps fsync and synchronous commit on. Off (the default)
	// trades crash safety for speed, which is what tests want.
	Durable bool
	// BinDir holds initdb, pg_ctl and postgres; empty means search PATH,
	// then /usr/lib/postgresql/*/bin (newest version first).
	BinDir string
}

// Cluster is a running (or stopped) throwaway PostgreSQL cluster.
type Cluster struct {
	bin     string // directory holding initdb, pg_ctl and postgres
	tmpDir  string // temporary directory holding everything; empty with Options.DataDir
	dataDir string
	logFile string
	port    int
	keep    bool
	durable bool
	// runAs is the account the server runs as; nil means the current one.
	runAs *syscall.Credential
}

const (
	startTimeout = 60 * time.Second
	// unixSocketPathMax is the usable length of a unix socket path (sun_path).
	unixSocketPathMax = 107
	ownerFile         = "owner.pid"
	tmpPattern        = "pgtest-"
)

// Start initializes a cluster and starts its server. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	runAs, err := serverAccount()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, keep: opts.Keep, durable: opts.Durable, runAs: runAs}

	if opts.DataDir != "" {
		dataDir, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("data directory %q: %w", opts.DataDir, err)
		}
		c.dataDir, c.keep = dataDir, true
	} else {
		parent := cmp.Or(opts.Dir, os.TempDir())
		c.reapStale(ctx, parent)
		if c.tmpDir, err = c.makeTempDir(parent); err != nil {
			return nil, err
		}
		c.dataDir = filepath.Join(c.tmpDir, "data")
	}
	c.logFile = filepath.Join(c.dataDir, "server.log")

	if err := c.start(ctx, opts.Port); err != nil {
		if c.tmpDir != "" && !c.keep {
			err = errors.Join(err, os.RemoveAll(c.tmpDir))
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, port int) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("inspect data directory %s: %w", c.dataDir, err)
	}
	// With a port of our choosing, another process may take it between our
	// probe and the server's bind: try a few.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c.port = port
		if c.port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			c.port = p
		}
		if err := c.writeConfig(); err != nil {
			return err
		}
		err := c.StartServer(ctx)
		if err == nil {
			return nil
		}
		if port != 0 || attempt == attempts || !strings.Contains(err.Error(), "already in use") {
			return err
		}
	}
}

// URL is the connection URL of database db as the superuser.
func (c *Cluster) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// LogFile is the server's log file, inside the data directory.
func (c *Cluster) LogFile() string { return c.logFile }

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("create database %q: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %q: %w", name, err)
	}
	return c.URL(name), nil
}

// StartServer starts the server of a stopped cluster on the same data
// directory and port, and waits until it accepts connections.
func (c *Cluster) StartServer(ctx context.Context) error {
	out, err := c.run(ctx, "pg_ctl", "start", "-D", c.dataDir, "-l", c.logFile,
		"-w", "-t", strconv.Itoa(int(startTimeout/time.Second)))
	if err != nil {
		return fmt.Errorf("start postgres on port %d: %w\n%s\nserver log (%s), last lines:\n%s",
			c.port, err, out, c.logFile, tail(c.logFile, 30))
	}
	return nil
}

// StopServer stops the server (fast shutdown: clients are disconnected) and
// keeps the data directory, so StartServer can bring it back.
func (c *Cluster) StopServer(ctx context.Context) error {
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast",
		"-w", "-t", strconv.Itoa(int(startTimeout/time.Second)))
	if err != nil {
		return fmt.Errorf("stop postgres on port %d: %w\n%s", c.port, err, out)
	}
	return nil
}

// Restart stops and starts the server.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.StopServer(ctx); err != nil {
		return err
	}
	return c.StartServer(ctx)
}

// Stop stops the server if it runs and removes the temporary directory
// unless Options.Keep or Options.DataDir was set.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+10*time.Second)
	defer cancel()
	var err error
	if c.running() {
		err = c.StopServer(ctx)
	}
	if c.tmpDir != "" && !c.keep && err == nil {
		if rmErr := os.RemoveAll(c.tmpDir); rmErr != nil {
			err = fmt.Errorf("remove %s: %w", c.tmpDir, rmErr)
		}
	}
	return err
}

// running reports whether the data directory has a postmaster.pid, that is,
// whether a server was started and not stopped.
func (c *Cluster) running() bool {
	_, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid"))
	return err == nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	args := []string{"-D", c.dataDir, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--no-locale"}
	if !c.durable {
		args = append(args, "--no-sync")
	}
	if out, err := c.run(ctx, "initdb", args...); err != nil {
		err = fmt.Errorf("initdb %s: %w\n%s", c.dataDir, err, out)
		if c.runAs != nil {
			err = fmt.Errorf("%w\n(running as root, so initdb runs as the postgres account, "+
				"which must be able to enter every parent directory)", err)
		}
		return err
	}
	conf := filepath.Join(c.dataDir, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", conf, err)
	}
	_, err = fmt.Fprintf(f, "\n# added by pgtest\ninclude_if_exists = 'pgtest.conf'\n")
	return errors.Join(err, f.Close())
}

// writeConfig writes the settings of this cluster to pgtest.conf, which
// postgresql.conf includes.
func (c *Cluster) writeConfig() error {
	var b strings.Builder
	set := func(name, value string) { fmt.Fprintf(&b, "%s = %s\n", name, value) }
	set("listen_addresses", "'127.0.0.1'")
	set("port", strconv.Itoa(c.port))
	socketDir := c.dataDir
	if len(socketDir)+len("/.s.PGSQL.65535") > unixSocketPathMax {
		socketDir = "" // too long for a socket path: TCP only
	}
	set("unix_socket_directories", quote(socketDir))
	set("max_connections", "200")
	set("log_line_prefix", quote("%m [%p] %q%u@%d "))
	if !c.durable {
		set("fsync", "off")
		set("synchronous_commit", "off")
		set("full_page_writes", "off")
	}
	path := filepath.Join(c.dataDir, "pgtest.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return c.chown(path)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// makeTempDir creates the cluster's temporary directory, owned by the server
// account, with a file naming this process so a later Start can clean up
// after a test binary that died without stopping its cluster.
func (c *Cluster) makeTempDir(parent string) (string, error) {
	dir, err := os.MkdirTemp(parent, tmpPattern)
	if err != nil {
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	owner := filepath.Join(dir, ownerFile)
	if err := os.WriteFile(owner, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", errors.Join(fmt.Errorf("write %s: %w", owner, err), os.RemoveAll(dir))
	}
	if err := c.chown(dir); err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	return dir, nil
}

// reapStale stops and removes the clusters in parent left behind by test
// processes that no longer exist. It is best effort.
func (c *Cluster) reapStale(ctx context.Context, parent string) {
	owners, _ := filepath.Glob(filepath.Join(parent, tmpPattern+"*", ownerFile))
	for _, owner := range owners {
		b, err := os.ReadFile(owner)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		dir := filepath.Dir(owner)
		stale := &Cluster{bin: c.bin, runAs: c.runAs, dataDir: filepath.Join(dir, "data")}
		if stale.running() {
			if _, err := stale.run(ctx, "pg_ctl", "stop", "-D", stale.dataDir, "-m", "immediate", "-w"); err != nil {
				continue
			}
		}
		_ = os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// run runs one of the PostgreSQL programs as the server account and returns
// its combined output.
func (c *Cluster) run(ctx context.Context, program string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, program), args...)
	cmd.Dir = "/" // the server account may not be able to enter ours
	cmd.WaitDelay = 5 * time.Second
	if c.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.runAs}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return bytes.TrimSpace(out.Bytes()), err
}

func (c *Cluster) chown(path string) error {
	if c.runAs == nil {
		return nil
	}
	if err := os.Chown(path, int(c.runAs.Uid), int(c.runAs.Gid)); err != nil {
		return fmt.Errorf("give %s to the postgres account: %w", path, err)
	}
	return nil
}

// serverAccount returns the credential to run the server with: nil for the
// current user, the "postgres" account when running as root.
func serverAccount() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses to run as root; "+
			"the unprivileged \"postgres\" account to run it as is missing (%v): "+
			"install the postgresql package, which creates it, or run as a normal user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres account uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres account gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

var programs = []string{"initdb", "pg_ctl", "postgres"}

// findBinaries returns the directory holding initdb, pg_ctl and postgres.
func findBinaries(dir string) (string, error) {
	if dir != "" {
		if !hasPrograms(dir) {
			return "", fmt.Errorf("%s does not hold all of %s", dir, strings.Join(programs, ", "))
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil && hasPrograms(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	for _, d := range dirs {
		if hasPrograms(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server programs (%s) not found on PATH or in /usr/lib/postgresql/*/bin: "+
		"install the postgresql package", strings.Join(programs, ", "))
}

// version is the major version in /usr/lib/postgresql/VERSION/bin, 0 if
// it is not a number.
func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func hasPrograms(dir string) bool {
	for _, p := range programs {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file, or a note why it cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
