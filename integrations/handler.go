// Package integrations receives alerts from monitoring tools over HTTP,
// parses each source's payload into a normalized oncall.AlertBatch and
// queues it. A request is answered 202 only once its batch is durable in
// the queue.
package integrations

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
)

// Publisher queues a batch durably: it returns nil only once the queue has
// acknowledged it (a JetStream PubAck). data is the JSON encoding of the
// oncall.AlertBatch whose ID is id and Kind is kind; the handler encodes
// each batch once, to check its size and to queue it.
type Publisher interface {
	PublishAlertData(ctx context.Context, id, kind string, data []byte) error
}

// Defaults of the Handler's options.
const (
	DefaultPublishTimeout = 5 * time.Second
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	MaxBodyBytes = 1 << 20
	// DefaultMaxBatchBytes keeps an encoded batch under NATS's default
	// max_payload (1 MiB), with room for headers.
	DefaultMaxBatchBytes = 1<<20 - 8<<10
	// retryAfterSeconds is the Retry-After of a 503.
	retryAfterSeconds = 5
)

// Answers that must not differ between their causes.
const (
	msgUnauthorized = "unknown or disabled integration token"
	msgUnavailable  = "queue unavailable, retry"
)

// Handler serves POST /integrations/{kind}/{token}.
type Handler struct {
	pub     Publisher
	log     *slog.Logger
	parsers map[string]Parser
	// special kinds under /integrations/ answer a request themselves
	// (SNS confirms subscriptions); they queue through Accept.
	special map[string]kindFunc
	// kinds are those whose tokens are kept: the above and those with
	// endpoints of their own (PagerDuty's, Opsgenie's).
	kinds map[string]bool
	// By integration name: the parser of an integration with a mapping or
	// a group_key template (its templates compiled once), and the group
	// key template of kinds with endpoints of their own.
	integrationParsers map[string]Parser
	groupKeys          map[string]func(*oncall.AlertBatch, []byte)
	tokens             []tokenEntry
	publishTimeout     time.Duration
	maxBatchBytes      int
	metrics            metrics
	limits             *limiter
	notice             RateLimitNotice
	outcomes           atomic.Pointer[BatchOutcomes] // set once the database is reached
	sns                snsConfig                     // the sns kind's certificate fetches and confirmations
}

// BatchOutcomes tells what became of accepted batches (storage.DB), for
// Opsgenie's request status.
type BatchOutcomes interface {
	// BatchOutcome returns oncall.ErrNotFound for a batch not stored yet.
	BatchOutcome(ctx context.Context, batchID string) (oncall.BatchOutcome, error)
}

// SetBatchOutcomes gives the handler the database's record of processed
// batches, once it is reached; until then a request status is unknown.
func (h *Handler) SetBatchOutcomes(o BatchOutcomes) { h.outcomes.Store(&o) }

// batchOutcomes returns the record of processed batches, nil before
// SetBatchOutcomes.
func (h *Handler) batchOutcomes() BatchOutcomes {
	if p := h.outcomes.Load(); p != nil {
		return *p
	}
	return nil
}

// kindFunc answers a request of a special kind, its integration found and
// its body read, and returns the status code it sent.
type kindFunc func(w http.ResponseWriter, r *http.Request, in oncall.Integration, body []byte, now time.Time) int

// RateLimitNotice is told, once an hour at most, that an integration is
// over its rate limit (a note in its Slack channel).
type RateLimitNotice func(ctx context.Context, in oncall.Integration, perMinute int)

// tokenEntry is one configured integration; only the hash of its token is
// kept.
type tokenEntry struct {
	hash        [sha256.Size]byte
	integration oncall.Integration // Token cleared
}

// Option adjusts a Handler.
type Option func(*Handler)

// WithPublishTimeout bounds how long a request waits for the queue before it
// is answered 503 (default DefaultPublishTimeout).
func WithPublishTimeout(d time.Duration) Option {
	return func(h *Handler) { h.publishTimeout = d }
}

// WithRateLimitNotice sets who is told that an integration is over its
// rate limit.
func WithRateLimitNotice(n RateLimitNotice) Option {
	return func(h *Handler) { h.notice = n }
}

// WithMaxBatchBytes sets the largest encoded batch handed to the queue; it
// must not exceed the queue's maximum message size (default
// DefaultMaxBatchBytes). A batch above it is queued without its raw body,
// and refused with 413 if it is still too large.
func WithMaxBatchBytes(n int) Option {
	return func(h *Handler) { h.maxBatchBytes = n }
}

// NewHandler returns a Handler accepting the tokens of in. Integrations
// without a token, or of a kind no parser serves, are skipped with a
// warning. A batch takes the channel and escalation of the first route of
// its integration that matches its labels. Metrics are registered on reg
// unless it is nil.
func NewHandler(in []oncall.Integration, pub Publisher, log *slog.Logger, reg prometheus.Registerer, opts ...Option) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{
		pub:            pub,
		log:            log,
		parsers:        builtinParsers(),
		publishTimeout: DefaultPublishTimeout,
		maxBatchBytes:  DefaultMaxBatchBytes,
		metrics:        newMetrics(log, reg),
		limits:         newLimiter(),
	}
	h.special = h.specialKinds()
	h.integrationParsers = map[string]Parser{}
	h.groupKeys = map[string]func(*oncall.AlertBatch, []byte){}
	h.kinds = map[string]bool{}
	for kind := range h.parsers {
		h.kinds[kind] = true
	}
	for kind := range h.special {
		h.kinds[kind] = true
	}
	for _, kind := range endpointKinds {
		h.kinds[kind] = true
	}
	for _, o := range opts {
		o(h)
	}
	type tokenOfKind struct {
		hash [sha256.Size]byte
		kind string
	}
	seen := make(map[tokenOfKind]bool)
	for _, it := range in {
		if it.Token == "" {
			log.Warn("integration has no token; it cannot receive alerts", "integration", it.Name, "kind", it.Kind)
			continue
		}
		if !h.kinds[it.Kind] {
			log.Warn("integration kind not served; it cannot receive alerts", "integration", it.Name, "kind", it.Kind)
			continue
		}
		e := tokenEntry{hash: sha256.Sum256([]byte(it.Token)), integration: it}
		e.integration.Token = ""
		if key := (tokenOfKind{e.hash, it.Kind}); seen[key] {
			log.Warn("integration token is shared with another integration of its kind; the first one receives its alerts", "integration", it.Name, "kind", it.Kind)
		} else {
			seen[key] = true
		}
		h.tokens = append(h.tokens, e)
		if p := ParserFor(it, it.Kind); p != nil {
			h.integrationParsers[it.Name] = p
		}
		if f := GroupKeyFunc(it); f != nil {
			h.groupKeys[it.Name] = f
		}
	}
	return h
}

// Register adds the handler's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("/integrations/{kind}/{token}", h.serveIntegration)
	mux.HandleFunc("/integrations/{kind}/{token}/heartbeat", h.serveHeartbeat)
	h.registerPagerDuty(mux)
	h.registerOpsgenie(mux)
}

func (h *Handler) serveIntegration(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	kind := r.PathValue("kind")
	code := h.ingest(w, r, kind, r.PathValue("token"))
	if !h.kinds[kind] {
		kind = "unknown" // bounded label values
	}
	h.metrics.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	h.metrics.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

// ingest answers one request and returns the status code it sent. The
// request's logger is built only on the paths that log.
func (h *Handler) ingest(w http.ResponseWriter, r *http.Request, kind, token string) int {
	reqLog := func() *slog.Logger { return h.log.With("kind", kind, "remote", r.RemoteAddr) }
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reqLog().Debug("ingest rejected: method not allowed", "method", r.Method)
		return writeError(w, http.StatusMethodNotAllowed, "method not allowed, use POST")
	}
	parse, ok := h.parsers[kind]
	special, isSpecial := h.special[kind]
	if !ok && !isSpecial {
		reqLog().Debug("ingest rejected: unknown kind")
		return writeError(w, http.StatusNotFound, "unknown integration kind "+quoteShort(kind))
	}
	in, ok := h.lookup(kind, token)
	if !ok {
		reqLog().Info("ingest rejected: unknown or disabled token")
		return writeError(w, http.StatusUnauthorized, msgUnauthorized)
	}
	inLog := func() *slog.Logger { return reqLog().With("integration", in.Name) }
	if p := h.integrationParsers[in.Name]; p != nil {
		parse = p
	}

	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes), r.ContentLength)
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			inLog().Info("ingest rejected: body too large")
			return writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
		}
		inLog().Info("ingest rejected: read body", "err", err)
		return writeError(w, http.StatusBadRequest, "read body: "+err.Error())
	}

	now := time.Now().UTC()
	if isSpecial {
		return special(w, r, in, body, now)
	}
	b, err := parse(body, now)
	if err != nil {
		inLog().Info("ingest rejected: bad payload", "err", err)
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	id, err := h.Accept(r.Context(), in, kind, b, body, now)
	if err != nil {
		return writeAcceptError(w, err)
	}
	return writeAccepted(w, id, len(b.Alerts))
}

// readBody reads r to its end like io.ReadAll, into a buffer sized for
// the declared length when there is one.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > MaxBodyBytes {
		return io.ReadAll(r)
	}
	// One byte more than declared, so that the read that meets the end
	// has room and a longer body is still read whole.
	b := make([]byte, 0, length+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}

// lookup finds the integration of kind whose token is token. It compares
// the token's hash with every configured hash in constant time, without
// stopping at a match, so timing tells nothing about the tokens.
func (h *Handler) lookup(kind, token string) (oncall.Integration, bool) {
	presented := sha256.Sum256([]byte(token))
	var found *tokenEntry
	for i := range h.tokens {
		e := &h.tokens[i]
		if subtle.ConstantTimeCompare(presented[:], e.hash[:]) == 1 && e.integration.Kind == kind && found == nil {
			found = e
		}
	}
	if found == nil {
		return oncall.Integration{}, false
	}
	return found.integration, true
}

type acceptedResponse struct {
	Status string `json:"status"`
	ID     string `json:"id"`
	Alerts int    `json:"alerts"`
}

type errorResponse struct {
	Error string `json:"error"`
}

// writeAccepted answers 202 with the acceptedResponse for the batch id
// holding n alerts, encoded as writeJSON would encode it. id is a
// newBatchID, which needs no escaping in JSON.
func writeAccepted(w http.ResponseWriter, id string, n int) int {
	body := make([]byte, 0, 64+len(id))
	body = append(body, `{"status":"accepted","id":"`...)
	body = append(body, id...)
	body = append(body, `","alerts":`...)
	body = strconv.AppendInt(body, int64(n), 10)
	body = append(body, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body) // the status is sent; a failed write means the client is gone
	return http.StatusAccepted
}

func writeError(w http.ResponseWriter, code int, msg string) int {
	return writeJSON(w, code, errorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// The status is sent; a failed write means the client is gone.
	_ = json.NewEncoder(w).Encode(v)
	return code
}

// newBatchID returns a random 128-bit id formatted like a version 4 UUID.
func newBatchID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read crashes the program instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
