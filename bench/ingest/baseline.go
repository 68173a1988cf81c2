package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/queue"
)

// baseline is the ceiling: an HTTP handler that reads the body, publishes
// it to JetStream (its own embedded server, file store, through the queue
// package, waiting for the PubAck) and answers 202. No parsing, no token,
// no metrics, no consumers. It runs in a process of its own, like oncall
// (this program started with -serve-baseline), or, with
// -baseline-in-process, in the process that sends the load.
type baseline struct {
	url  string
	dir  string
	q    *queue.Queue
	srv  *http.Server
	done chan error
}

func startBaseline(ctx context.Context, log *slog.Logger) (_ *baseline, err error) {
	b := &baseline{done: make(chan error, 1)}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.close())
		}
	}()
	if b.dir, err = os.MkdirTemp("", "oncall-bench-baseline-"); err != nil {
		return nil, fmt.Errorf("create baseline NATS directory: %w", err)
	}
	qlog := slog.New(log.Handler().WithAttrs([]slog.Attr{slog.String("component", "baseline")}))
	if b.q, err = queue.Open(ctx, queue.Options{DataDir: b.dir, Logger: qlog}); err != nil {
		return nil, fmt.Errorf("open baseline queue: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("baseline listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ingest", b.ingest)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.url = "http://" + ln.Addr().String() + "/ingest"
	go func() { b.done <- b.srv.Serve(ln) }()
	return b, nil
}

// serveBaseline is the -serve-baseline mode: serve the baseline, print
// its URL on out, and stop when ctx is done (SIGTERM).
func serveBaseline(ctx context.Context, log *slog.Logger, out io.Writer) error {
	b, err := startBaseline(ctx, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, b.url)
	<-ctx.Done()
	return b.close()
}

// startBaselineTarget starts the baseline, in a subprocess unless
// inProcess, and returns its target and how to stop it.
func startBaselineTarget(ctx context.Context, log *slog.Logger, inProcess bool) (target, func() error, error) {
	if inProcess {
		b, err := startBaseline(ctx, log)
		if err != nil {
			return target{}, nil, err
		}
		return target{name: "baseline", urls: []string{b.url}}, b.close, nil
	}
	p, err := startBaselineProcess(ctx, log)
	if err != nil {
		return target{}, nil, err
	}
	t := target{name: "baseline", urls: []string{p.url}, serverCPU: processCPU(p.cmd.Process.Pid)}
	return t, p.close, nil
}

// baselineProcess is this program running with -serve-baseline.
type baselineProcess struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

func startBaselineProcess(ctx context.Context, log *slog.Logger) (*baselineProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start baseline: %w", err)
	}
	cmd := exec.Command(exe, "-serve-baseline")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start baseline: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start baseline: %w", err)
	}
	p := &baselineProcess{cmd: cmd, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		urls <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.url = <-urls:
	case <-ctx.Done():
	case <-time.After(readyTimeout):
	}
	if p.url == "" {
		return nil, errors.Join(errors.New("baseline process did not report its URL"), p.close())
	}
	log.Info("baseline started", "pid", cmd.Process.Pid, "url", p.url)
	return p, nil
}

func (p *baselineProcess) close() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("baseline did not stop within %s of SIGTERM; killed", stopTimeout)
	}
}

func (b *baseline) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	batch := oncall.AlertBatch{
		ID:          newID(),
		Integration: "baseline",
		Kind:        "webhook",
		ReceivedAt:  time.Now().UTC(),
		Status:      oncall.AlertFiring,
		Raw:         body, // the bench sends valid JSON
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := b.q.PublishAlert(ctx, batch); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"accepted"}`+"\n")
}

func (b *baseline) close() error {
	var errs []error
	if b.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, b.srv.Shutdown(ctx))
		cancel()
		if err := <-b.done; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("baseline server: %w", err))
		}
	}
	if b.q != nil {
		b.q.Close()
	}
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

// newID returns a random 128-bit hex id, like the batch ids of ingest.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
