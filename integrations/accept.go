package integrations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/oncallbot/oncall"
)

// AcceptError is why Accept did not queue a batch: the HTTP status and
// message to answer with, and for 429 and 503 when to try again.
type AcceptError struct {
	Status     int
	Message    string
	RetryAfter time.Duration
}

func (e *AcceptError) Error() string { return e.Message }

// Integration returns the integration of kind whose token is token
// (compared by hash, in constant time), false for none.
func (h *Handler) Integration(kind, token string) (oncall.Integration, bool) {
	return h.lookup(kind, token)
}

// Accept finishes a batch parsed from a request to integration in and
// queues it: the routes of in choose its channel, escalation and severity;
// a maintenance window of in marks it; the rate limit of in may refuse it;
// it gets its ID, Integration, Kind, ReceivedAt (now) and Raw (raw, a
// valid JSON document or nil). It returns the batch's ID once the queue
// holds it, or an *AcceptError to answer with. The kinds served under
// /integrations/ and the kinds with endpoints of their own (PagerDuty's,
// Opsgenie's) all end here.
func (h *Handler) Accept(ctx context.Context, in oncall.Integration, kind string, b oncall.AlertBatch, raw []byte,
	now time.Time) (string, error) {
	// Built only on the paths that log: ingest is hot.
	log := func() *slog.Logger { return h.log.With("kind", kind, "integration", in.Name) }
	if !b.Heartbeat {
		if wait, ok := h.limits.allow(in, now); !ok {
			h.rateLimited(ctx, in, log())
			return "", &AcceptError{Status: http.StatusTooManyRequests, RetryAfter: wait,
				Message: fmt.Sprintf("rate limit of integration %q exceeded (%d requests a minute); retry after %s",
					in.Name, h.limits.perMinute(in), wait.Round(time.Second))}
		}
	}
	if r, ok := route(in.Routes, b.Labels); ok {
		b.Channel, b.Escalation = r.Channel, r.Escalation
		if r.Severity != "" {
			b.Severity = r.Severity
			for i := range b.Alerts {
				b.Alerts[i].Severity = r.Severity
			}
		}
	}
	for _, w := range in.Maintenance {
		if w.Contains(now) {
			b.Maintenance = true
		}
	}
	if _, parsed := h.parsers[kind]; !parsed && !b.Heartbeat {
		// Kinds parsed under /integrations/ had their group key template
		// applied by their parser (ParserFor).
		if f := h.groupKeys[in.Name]; f != nil {
			f(&b, raw)
		}
	}
	b.ID = newBatchID()
	b.Integration = in.Name
	b.Kind = kind
	b.ReceivedAt = now
	// A batch too large with its raw body is queued without it.
	data, err := encodeBatch(&b, storableJSON(raw), h.maxBatchBytes)
	if err != nil {
		log().Error("ingest failed", "err", err)
		return "", &AcceptError{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	if len(data) > h.maxBatchBytes {
		log().Info("ingest rejected: batch too large", "bytes", len(data))
		return "", &AcceptError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf(
			"alert batch too large: %d bytes once normalized, limit %d; send fewer alerts per request",
			len(data), h.maxBatchBytes)}
	}
	// The outcome must not depend on the client hanging up: once started,
	// the publish runs to its PubAck or its timeout.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	if err := h.pub.PublishAlertData(pctx, b.ID, b.Kind, data); err != nil {
		log().Error("ingest failed: publish alert batch", "batch", b.ID, "err", err)
		return "", &AcceptError{Status: http.StatusServiceUnavailable, Message: msgUnavailable,
			RetryAfter: retryAfterSeconds * time.Second}
	}
	h.metrics.alerts.WithLabelValues(in.Name).Add(float64(len(b.Alerts)))
	if h.log.Enabled(ctx, slog.LevelDebug) {
		log().Debug("ingest accepted", "batch", b.ID, "alerts", len(b.Alerts), "group_key", b.GroupKey,
			"channel", b.Channel, "escalation", b.Escalation, "maintenance", b.Maintenance)
	}
	return b.ID, nil
}

// writeAcceptError answers err (an *AcceptError, else 500).
func writeAcceptError(w http.ResponseWriter, err error) int {
	var ae *AcceptError
	if !errors.As(err, &ae) {
		return writeError(w, http.StatusInternalServerError, "internal error")
	}
	if ae.RetryAfter > 0 {
		setRetryAfter(w, ae.RetryAfter)
	}
	return writeError(w, ae.Status, ae.Message)
}

// setRetryAfter sets Retry-After to d in whole seconds, at least one.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(max(d.Round(time.Second), time.Second)/time.Second)))
}

// rateLimited tells, once an hour per integration, that alerts of in are
// being refused (the RateLimitNotice option: a note in its Slack channel).
func (h *Handler) rateLimited(ctx context.Context, in oncall.Integration, log *slog.Logger) {
	h.metrics.limited.WithLabelValues(in.Name).Inc()
	if !h.limits.shouldAnnounce(in.Name, time.Now()) {
		return
	}
	log.Warn("integration over its rate limit: requests refused with 429 until it slows down",
		"limit_per_minute", h.limits.perMinute(in))
	if h.notice != nil {
		go h.notice(context.WithoutCancel(ctx), in, h.limits.perMinute(in))
	}
}

// DefaultRateLimit is the requests a minute an integration may send
// before 429: generous, a storm's guard rather than a quota.
const DefaultRateLimit = 6000

// limiter is a token bucket per integration: RateLimit requests a minute,
// with a burst of as many.
type limiter struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	announced map[string]time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter() *limiter {
	return &limiter{buckets: map[string]*bucket{}, announced: map[string]time.Time{}}
}

func (l *limiter) perMinute(in oncall.Integration) int {
	if in.RateLimit > 0 {
		return in.RateLimit
	}
	return DefaultRateLimit
}

// allow takes a token of in's bucket at now; when there is none it returns
// how long until there is.
func (l *limiter) allow(in oncall.Integration, now time.Time) (time.Duration, bool) {
	limit := float64(l.perMinute(in))
	perSecond := limit / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[in.Name]
	if !ok {
		b = &bucket{tokens: limit, at: now}
		l.buckets[in.Name] = b
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(limit, b.tokens+elapsed*perSecond)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / perSecond * float64(time.Second)), false
}

// shouldAnnounce says whether the rate limiting of an integration is to be
// announced now: once an hour at most.
func (l *limiter) shouldAnnounce(name string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.announced[name]; ok && now.Sub(last) < time.Hour {
		return false
	}
	l.announced[name] = now
	return true
}

// serveHeartbeat records a heartbeat of the integration of kind and token:
// GET or POST /integrations/{kind}/{token}/heartbeat. It is queued like an
// alert (a batch marked Heartbeat) and answered 202 once durable.
func (h *Handler) serveHeartbeat(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed, use GET or POST")
		return
	}
	if !h.kinds[kind] {
		writeError(w, http.StatusNotFound, "unknown integration kind "+quoteShort(kind))
		return
	}
	in, ok := h.lookup(kind, r.PathValue("token"))
	if !ok {
		writeError(w, http.StatusUnauthorized, msgUnauthorized)
		return
	}
	id, err := h.Accept(r.Context(), in, kind, oncall.HeartbeatBatch(in.Name), nil, time.Now().UTC())
	if err != nil {
		writeAcceptError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "id": id})
}
