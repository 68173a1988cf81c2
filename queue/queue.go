// Package queue is the JetStream edge of oncall: an embedded NATS server (or
// a connection to an external cluster), the ALERTS and NOTIFY work-queue
// streams, publishing that returns only once a message is durable, and
// consumers that retry failed work with backoff and never drop it.
package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names and the subjects they hold.
const (
	streamAlerts = "ALERTS"
	streamNotify = "NOTIFY"

	// duplicateWindow is how long JetStream remembers a Nats-Msg-Id, so a
	// batch published twice within it (a client retry) is stored once.
	duplicateWindow = 2 * time.Minute

	// embeddedMaxPayload lets a batch carry a 1 MiB request body (Raw) next
	// to its normalized alerts. An external server keeps its own max_payload
	// (default 1 MiB); Open warns when that is small.
	embeddedMaxPayload = 8 << 20
	minMaxPayload      = 4 << 20

	readyTimeout   = 10 * time.Second
	connectTimeout = 5 * time.Second
	drainTimeout   = 10 * time.Second
)

// Options configures Open.
type Options struct {
	// URL of an external NATS server or cluster (comma-separated URLs are
	// accepted). Empty starts an embedded server in this process.
	URL string
	// DataDir is where the embedded server keeps its files (under
	// DataDir/jetstream). Empty uses a temporary directory that is removed
	// by Close: fine for trying things out, not for production.
	DataDir string
	// Replicas of each stream on an external cluster. Zero means 1.
	// Production clusters should use 3 so that a stored alert survives
	// the loss of a machine. The embedded server always uses 1.
	Replicas int
	// Workers is how many messages each Consume call handles at once.
	// Zero means 4.
	Workers int
	// Logger receives connection events, retries and terminated messages.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Queue is a connection to JetStream with the oncall streams in place.
// Its methods are safe for concurrent use.
type Queue struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	srv     *server.Server // nil when connected to an external server
	token   string         // that the embedded server requires of clients
	tempDir string         // created by Open, removed by Close
	log     *slog.Logger
	workers int
	closed  chan struct{} // closed by the connection's ClosedHandler

	// stopping is cancelled by Close to stop the consumers; consumers
	// counts the running Consume calls so Close can wait for them.
	stopping     context.Context
	stopConsumer context.CancelFunc
	mu           sync.Mutex
	closing      bool
	consumers    sync.WaitGroup
	closeOnce    sync.Once
}

// Open starts the embedded server (o.URL empty) or connects to o.URL, and
// creates or updates the ALERTS and NOTIFY streams.
func Open(ctx context.Context, o Options) (*Queue, error) {
	q := &Queue{
		log:     o.Logger,
		workers: o.Workers,
		closed:  make(chan struct{}),
	}
	if q.log == nil {
		q.log = slog.Default()
	}
	if q.workers <= 0 {
		q.workers = 4
	}
	q.stopping, q.stopConsumer = context.WithCancel(context.Background())

	replicas := max(o.Replicas, 1)
	if err := q.connect(o); err != nil {
		q.shutdownServer()
		return nil, err
	}
	if q.srv != nil && replicas > 1 {
		q.log.Warn("embedded NATS server: stream replicas set to 1", "requested", replicas)
		replicas = 1
	}
	if mp := q.nc.MaxPayload(); mp < minMaxPayload {
		q.log.Warn("NATS max_payload is small: large alert requests will be refused with 503; set max_payload to at least 4MB",
			"max_payload", mp)
	}

	js, err := jetstream.New(q.nc)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("open JetStream context: %w", err)
	}
	q.js = js
	for _, name := range []string{streamAlerts, streamNotify} {
		if err := q.ensureStream(ctx, name, replicas); err != nil {
			q.Close()
			return nil, err
		}
	}
	if err := q.narrowNotifier(ctx); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// narrowNotifier gives a "notifier" consumer made by an earlier version
// (which took every subject of NOTIFY) its filter before the "pager"
// consumer is created: a work queue stream refuses overlapping consumers.
func (q *Queue) narrowNotifier(ctx context.Context) error {
	c, err := q.js.Consumer(ctx, notifierSpec.stream, notifierSpec.durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up consumer %s: %w", notifierSpec.durable, err)
	}
	cfg := c.CachedInfo().Config
	if cfg.FilterSubject != "" || len(cfg.FilterSubjects) > 0 {
		return nil
	}
	cfg.FilterSubject = notifierSpec.filter
	if _, err := q.js.UpdateConsumer(ctx, notifierSpec.stream, cfg); err != nil {
		return fmt.Errorf("narrow consumer %s to %s: %w", notifierSpec.durable, notifierSpec.filter, err)
	}
	q.log.Info("consumer narrowed to its subjects", "consumer", notifierSpec.durable, "filter", notifierSpec.filter)
	return nil
}

// connect starts the embedded server when o.URL is empty and opens q.nc.
func (q *Queue) connect(o Options) error {
	opts := []nats.Option{
		nats.Name("oncall"),
		nats.Timeout(connectTimeout),
		nats.DrainTimeout(drainTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, 2*time.Second),
		nats.PingInterval(20 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when the connection is being closed
				q.log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			q.log.Info("NATS reconnected", "url", redact(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			q.log.Error("NATS asynchronous error", "subject", subject, "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			q.log.Debug("NATS connection closed")
			close(q.closed)
		}),
	}

	url := o.URL
	if url == "" {
		if err := q.startServer(o.DataDir); err != nil {
			return err
		}
		opts = append(opts, nats.InProcessServer(q.srv))
		url = q.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS %q: %w", redact(url), err)
	}
	q.nc = nc
	// Not ConnectedUrlRedacted: it hides a password, not a token.
	q.log.Info("connected to NATS", "url", redact(nc.ConnectedUrl()), "server", nc.ConnectedServerName(),
		"embedded", q.srv != nil)
	return nil
}

// startServer starts the embedded JetStream server on a random loopback
// port (the process itself connects in-process; the port lets another
// process or test share it). The server requires a token made afresh at
// every start, so that other local processes cannot publish alerts past
// the integrations' tokens; ClientURL carries it.
func (q *Queue) startServer(dataDir string) error {
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "oncall-nats-")
		if err != nil {
			return fmt.Errorf("create temporary NATS data dir: %w", err)
		}
		q.tempDir = dir
		dataDir = dir
		q.log.Warn("no data dir set: embedded NATS keeps queued messages in a temporary directory, removed at shutdown",
			"dir", dir)
	} else if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("create NATS data dir %q: %w", dataDir, err)
	}

	q.token = rand.Text()
	srv, err := server.NewServer(&server.Options{
		ServerName:    "oncall",
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: q.token,
		JetStream:     true,
		StoreDir:      dataDir,
		MaxPayload:    embeddedMaxPayload,
		NoSigs:        true,
	})
	if err != nil {
		q.removeTempDir()
		return fmt.Errorf("configure embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{q.log.With("component", "nats-server")}, false, false, false)
	q.srv = srv
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		return fmt.Errorf("embedded NATS server (data dir %q) not ready for connections within %s", dataDir, readyTimeout)
	}
	q.log.Info("embedded NATS server started", "data_dir", dataDir, "client_url", redact(q.ClientURL()))
	return nil
}

// ensureStream creates the named stream or updates it to the wanted config.
func (q *Queue) ensureStream(ctx context.Context, name string, replicas int) error {
	cfg := jetstream.StreamConfig{
		Name:       name,
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: duplicateWindow,
		Replicas:   replicas,
	}
	switch name {
	case streamAlerts:
		cfg.Description = "alert batches accepted by ingest, waiting for the processor"
		cfg.Subjects = []string{subjectAlerts + ">"}
	case streamNotify:
		cfg.Description = "incident changes waiting for the notifier"
		cfg.Subjects = []string{subjectNotify + ">"}
	}
	// Never scale an existing stream down: an operator may have raised its
	// replicas, and every replica's start would undo that.
	if info, err := q.js.Stream(ctx, name); err == nil {
		cfg.Replicas = max(cfg.Replicas, info.CachedInfo().Config.Replicas)
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up stream %s: %w", name, err)
	}
	if _, err := q.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("create or update stream %s: %w", name, err)
	}
	return nil
}

// ClientURL is the client URL of the embedded server with its token
// (nats://token@127.0.0.1:port), for another Queue or tool to connect to
// it; "" when connected to an external server. It is a secret: log it
// redacted.
func (q *Queue) ClientURL() string {
	if q.srv == nil {
		return ""
	}
	u, err := url.Parse(q.srv.ClientURL())
	if err != nil { // the server makes it from its host and port
		return ""
	}
	u.User = url.User(q.token)
	return u.String()
}

// Ping reports whether the queue can take work: the connection is up and
// both streams answer.
func (q *Queue) Ping(ctx context.Context) error {
	if st := q.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS connection is %s", st)
	}
	for _, name := range []string{streamAlerts, streamNotify} {
		if _, err := q.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s info: %w", name, err)
		}
	}
	return nil
}

// Close stops the consumers (letting messages in hand finish), drains the
// connection and shuts down the embedded server. It is safe to call more
// than once.
func (q *Queue) Close() {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closing = true
		q.mu.Unlock()
		q.stopConsumer()
		q.consumers.Wait()

		if q.nc != nil {
			if err := q.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				q.log.Warn("drain NATS connection", "err", err)
				q.nc.Close()
			}
			select {
			case <-q.closed:
			case <-time.After(drainTimeout + time.Second):
				q.log.Warn("NATS connection did not close after drain")
				q.nc.Close()
			}
		}
		q.shutdownServer()
	})
}

func (q *Queue) shutdownServer() {
	if q.srv != nil {
		q.srv.Shutdown()
		q.srv.WaitForShutdown()
		q.log.Info("embedded NATS server stopped")
	}
	q.removeTempDir()
}

func (q *Queue) removeTempDir() {
	if q.tempDir == "" {
		return
	}
	if err := os.RemoveAll(q.tempDir); err != nil {
		q.log.Warn("remove temporary NATS data dir", "dir", q.tempDir, "err", err)
	}
	q.tempDir = ""
}

// startConsumer registers a running Consume call; it fails once Close began.
func (q *Queue) startConsumer() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return errors.New("queue is closed")
	}
	q.consumers.Add(1)
	return nil
}

// MaxPayload is the largest message the server takes, in bytes.
func (q *Queue) MaxPayload() int { return int(q.nc.MaxPayload()) }
