package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
)

const (
	readyTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

// route is one webhook integration of the bench config and its channel.
type route struct {
	name    string
	token   string
	channel string
}

// routes returns n integrations, each with a channel of its own: the bot
// posts at most about one message a second to a channel (Slack's limit),
// so alerts meant to reach Slack quickly are spread over channels.
func routes(n int) []route {
	out := make([]route, n)
	for i := range out {
		out[i] = route{name: fmt.Sprintf("bench-%d", i), token: fmt.Sprintf("bench-webhook-token-%04d", i),
			channel: fmt.Sprintf("C0BENCH%04d", i)}
	}
	return out
}

// benchConfig is the config of an instance; rateLimit, when positive, is
// every integration's rate_limit (requests a minute), else the default.
func benchConfig(rs []route, rateLimit int) string {
	var b strings.Builder
	b.WriteString("integrations:\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "  - name: %s\n    kind: webhook\n    token: %s\n    channel: %s\n", r.name, r.token, r.channel)
		if rateLimit > 0 {
			fmt.Fprintf(&b, "    rate_limit: %d\n", rateLimit)
		}
	}
	return b.String()
}

// stack is what the oncall instances of a run share: the binary, a durable
// PostgreSQL and a fake Slack.
type stack struct {
	log    *slog.Logger
	routes []route
	dir    string // the binary, and a directory per instance
	bin    string
	pg     *pgtest.Cluster
	slack  *fakeslack.Server
}

// startStack starts everything; on error it undoes what it started.
func startStack(ctx context.Context, log *slog.Logger, channels int) (_ *stack, err error) {
	st := &stack{log: log, routes: routes(channels)}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.close())
		}
	}()
	if st.dir, err = os.MkdirTemp("", "oncall-bench-"); err != nil {
		return nil, fmt.Errorf("create work directory: %w", err)
	}
	st.bin = filepath.Join(st.dir, "oncall")
	log.Info("building oncall", "out", st.bin)
	if err := buildOncall(ctx, st.bin); err != nil {
		return nil, err
	}
	log.Info("starting PostgreSQL (durable: fsync and synchronous commit on)")
	if st.pg, err = pgtest.Start(ctx, pgtest.Options{Durable: true}); err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	var ids []string
	for _, r := range st.routes {
		ids = append(ids, r.channel)
	}
	if st.slack, err = fakeslack.New(fakeslack.Config{Channels: ids}); err != nil {
		return nil, err
	}
	return st, nil
}

// buildOncall builds ./cmd/oncall of the module this program belongs to.
func buildOncall(ctx context.Context, out string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find the module root (go env GOMOD): %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/oncall")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/oncall in %s: %w\n%s", root, err, b)
	}
	return nil
}

// close stops the fake Slack and PostgreSQL and removes the work directory.
// It tolerates a half-started stack.
func (st *stack) close() error {
	var errs []error
	if st.slack != nil {
		st.slack.Close()
	}
	if st.pg != nil {
		if err := st.pg.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop PostgreSQL: %w", err))
		}
	}
	if st.dir != "" {
		if err := os.RemoveAll(st.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", st.dir, err))
		}
	}
	return errors.Join(errs...)
}

// instance is one `oncall serve` subprocess with its own database and NATS
// directory: every measurement starts on a fresh one, so that no backlog of
// an earlier load is still being processed.
type instance struct {
	name   string
	dir    string
	log    *slog.Logger
	slack  *fakeslack.Server
	routes []route
	// rateLimit is the integrations' rate_limit; 0: oncall's default.
	rateLimit int
	dbURL     string
	pgData    string // PostgreSQL's data directory; "" without a database
	cmd       *exec.Cmd
	// exited is closed when the subprocess has exited; waitErr is then set.
	exited  chan struct{}
	waitErr error
	base    string // http://127.0.0.1:port
}

// startOncall starts an instance and waits until it is ready. Without a
// database (withDB false) its DATABASE_URL points at a closed port: ingest
// works, nothing is processed, and readiness is /readyz/ingest. rateLimit,
// when positive, is the rate_limit of its integrations.
func (st *stack) startOncall(ctx context.Context, name string, withDB bool, rateLimit int) (_ *instance, err error) {
	in := &instance{name: name, dir: filepath.Join(st.dir, name), log: st.log.With("oncall", name), slack: st.slack,
		routes: st.routes, rateLimit: rateLimit}
	if err := os.MkdirAll(in.dir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", in.dir, err)
	}
	if in.dbURL, err = st.database(ctx, name, withDB); err != nil {
		return nil, err
	}
	if withDB {
		in.pgData = st.pg.DataDir()
	}
	if err := in.start(st.bin); err != nil {
		return nil, err
	}
	if err := in.waitReady(ctx, withDB); err != nil {
		return nil, errors.Join(err, in.close(""))
	}
	return in, nil
}

func (st *stack) database(ctx context.Context, name string, withDB bool) (string, error) {
	if withDB {
		return st.pg.CreateDatabase(ctx, "oncall_"+strings.ReplaceAll(name, "-", "_"))
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	return "postgres://postgres@" + addr + "/none?sslmode=disable&connect_timeout=1", nil
}

func (in *instance) start(bin string) error {
	cfg := filepath.Join(in.dir, "oncall.yaml")
	if err := os.WriteFile(cfg, []byte(benchConfig(in.routes, in.rateLimit)), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	logFile, err := os.Create(in.logPath())
	if err != nil {
		return fmt.Errorf("create oncall log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(bin, "serve", "--config", cfg, "--listen", addr, "--data-dir", filepath.Join(in.dir, "nats"))
	cmd.Env = append(cleanEnv(os.Environ()),
		"DATABASE_URL="+in.dbURL,
		"SLACK_BOT_TOKEN="+in.slack.BotToken(),
		"SLACK_APP_TOKEN="+in.slack.AppToken(),
		"SLACK_API_URL="+in.slack.APIURL(),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", bin, err)
	}
	in.cmd, in.exited, in.base = cmd, make(chan struct{}), "http://"+addr
	go func() {
		in.waitErr = cmd.Wait()
		close(in.exited)
	}()
	in.log.Info("oncall serve started", "pid", cmd.Process.Pid, "addr", addr)
	return nil
}

func (in *instance) logPath() string { return filepath.Join(in.dir, "oncall.log") }

// cleanEnv drops the variables that would point the subprocess elsewhere.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ONCALL_") || strings.HasPrefix(name, "SLACK_") || strings.HasPrefix(name, "TWILIO_") ||
			name == "NATS_URL" || name == "DATABASE_URL" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// waitReady polls /readyz (database and queue), or /readyz/ingest (queue)
// without a database.
func (in *instance) waitReady(ctx context.Context, withDB bool) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	path := "/readyz/ingest"
	if withDB {
		path = "/readyz"
	}
	for {
		if err := in.alive(); err != nil {
			return err
		}
		if ready(ctx, client, in.base+path) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("oncall %s not ready within %s: %w\noncall log, last lines:\n%s",
				in.name, readyTimeout, ctx.Err(), tail(in.logPath(), 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// alive reports an error if the subprocess has exited.
func (in *instance) alive() error {
	select {
	case <-in.exited:
		return fmt.Errorf("oncall %s exited early: %v\noncall log, last lines:\n%s",
			in.name, in.waitErr, tail(in.logPath(), 20))
	default:
		return nil
	}
}

// target is the instance's ingest, one URL per integration.
func (in *instance) target() target {
	t := target{name: "oncall", serverCPU: processCPU(in.cmd.Process.Pid)}
	if in.pgData != "" {
		t.dbCPU = treeCPU(func() int { return postmasterPID(in.pgData) })
	}
	for _, r := range in.routes {
		t.urls = append(t.urls, in.base+"/integrations/webhook/"+r.token)
	}
	return t
}

// close stops the subprocess (SIGTERM, then SIGKILL after stopTimeout) and
// copies its log into logDir when that is set. Alerts it had accepted but
// not processed yet stay unprocessed: the next measurement starts afresh.
func (in *instance) close(logDir string) error {
	var err error
	select {
	case <-in.exited:
	default:
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(stopTimeout):
			_ = in.cmd.Process.Kill()
			<-in.exited
			err = fmt.Errorf("oncall %s did not stop within %s of SIGTERM; killed", in.name, stopTimeout)
		}
	}
	if logDir != "" {
		err = errors.Join(err, copyFile(in.logPath(), filepath.Join(logDir, "oncall-"+in.name+".log")))
	}
	return err
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copy oncall log: %w", err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		return fmt.Errorf("copy oncall log: %w", err)
	}
	return nil
}

// tail returns the last n lines of a file, or why it cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
