package escalation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

// Sender pages by one channel (Slack, SMS, call).
//
// Errors tell the worker what to do: one wrapping oncall.ErrPermanent
// stops at once; one with RetryDelay() (a rate limit) is retried after
// that delay; any other is retried with backoff.
type Sender interface {
	// Send makes the page and returns the provider's id of it.
	Send(ctx context.Context, p oncall.Page) (providerID string, err error)
	// Find looks for a page of p made at or after since: found is false
	// when there is none, err non-nil when it cannot tell.
	Find(ctx context.Context, p oncall.Page, since time.Time) (providerID string, found bool, err error)
}

// DeliveryStore is the part of the database the delivery worker uses.
type DeliveryStore interface {
	BeginDelivery(ctx context.Context, id int64, now time.Time, lease time.Duration) (storage.DeliveryClaim, error)
	DeliverySent(ctx context.Context, id int64, providerID, note string) (bool, error)
	RetryDelivery(ctx context.Context, id int64, r storage.Retry) error
	FailDelivery(ctx context.Context, id int64, errText string) (*oncall.Delivery, bool, error)
	CancelDelivery(ctx context.Context, id int64, why string) (bool, error)
	ProviderIDTaken(ctx context.Context, providerID string, id int64) (bool, error)
}

// Phones gives the phone number of a person, "" if none.
type Phones interface {
	Phone(person string) string
}

// WorkerConfig is what a Worker works with. Store is required.
type WorkerConfig struct {
	Store DeliveryStore
	// Senders by channel; a delivery by a channel without one fails at
	// once (and falls back to the person's next channel).
	Senders  map[oncall.NotifyChannel]Sender
	Phones   Phones
	Notifier Notifier // told when a page changed the incident's timeline
	// Wake, if set, is called when a failure made another page due now
	// (Engine.Wake), so that it is not left for the next tick.
	Wake   func()
	Logger *slog.Logger
	// Lease bounds one attempt: a delivery left sending longer than this
	// belongs to a worker that died, and is reconciled. Default 60s.
	Lease time.Duration
	// MaxAttempts before a delivery failing for a passing reason is given
	// up (and falls back). Default 8: about two minutes of backoff.
	MaxAttempts int
	// Backoff of retried attempts: MinBackoff doubling up to MaxBackoff,
	// with jitter. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// Now is the wall clock; the providers' records are compared with it.
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Worker sends deliveries taken from the queue, once each.
//
// Every attempt is recorded before the provider is called (the delivery is
// "sending" under a lease) and after: a worker that died in between leaves
// the lease to run out, and the next attempt asks the provider whether the
// page went out before sending it again. When the provider cannot tell,
// the page is sent again and the timeline says so: a page twice is better
// than none at 4 AM.
type Worker struct {
	cfg     WorkerConfig
	log     *slog.Logger
	results *prometheus.CounterVec
}

// NewWorker returns a Worker over cfg.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Store == nil {
		return nil, errors.New("new delivery worker: a store is required")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Worker{cfg: cfg, log: cfg.Logger,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oncall_deliveries_total",
			Help: "Delivery attempts by channel and result (sent, found, retry, failed).",
		}, []string{"channel", "result"}),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.results); err != nil {
			return nil, fmt.Errorf("new delivery worker: register metrics: %w", err)
		}
	}
	return w, nil
}

// retryLater is an error that asks the queue to try the message again
// after a delay.
type retryLater struct {
	delay time.Duration
	err   error
}

func (e *retryLater) Error() string {
	if e.err == nil {
		return fmt.Sprintf("try again in %s", e.delay)
	}
	return e.err.Error()
}
func (e *retryLater) Unwrap() error             { return e.err }
func (e *retryLater) RetryDelay() time.Duration { return e.delay }

// Handle sends the delivery id, or records why not. It returns an error
// with a RetryDelay when the message should come back later; a database
// error is returned as it is (the queue retries it with backoff).
func (w *Worker) Handle(ctx context.Context, id int64) error {
	c, err := w.cfg.Store.BeginDelivery(ctx, id, w.cfg.Now(), w.cfg.Lease)
	if errors.Is(err, oncall.ErrNotFound) {
		w.log.WarnContext(ctx, "queued delivery does not exist; dropped", "delivery", id)
		return nil
	}
	if err != nil {
		return err
	}
	d := c.Delivery
	log := w.log.With("delivery", d.ID, "key", d.Key, "incident", d.IncidentID, "channel", d.Channel,
		"attempt", d.Attempts)
	switch c.Step {
	case storage.DeliverySkip:
		log.DebugContext(ctx, "delivery needs nothing", "status", d.Status)
		return nil
	case storage.DeliveryWait:
		return &retryLater{delay: c.Wait, err: fmt.Errorf("delivery %d is being sent by another worker", d.ID)}
	}

	sender, ok := w.cfg.Senders[d.Channel]
	if !ok {
		return w.fail(ctx, log, d, fmt.Sprintf("%s is not configured", d.Channel.Name()))
	}
	page := oncall.Page{Delivery: d, Incident: c.Incident}
	if w.cfg.Phones != nil && (d.Channel == oncall.NotifySMS || d.Channel == oncall.NotifyCall) {
		page.Phone = w.cfg.Phones.Phone(d.Person)
	}

	note := ""
	if c.Step == storage.DeliveryReconcile {
		pid, found, err := sender.Find(ctx, page, c.Since)
		if err == nil && found {
			// Twilio's lists match by number and time: what was found may
			// be another page to the same person.
			var taken bool
			if taken, err = w.cfg.Store.ProviderIDTaken(ctx, pid, d.ID); err == nil && taken {
				err = fmt.Errorf("the page found (%s) is another page's", pid)
			}
		}
		switch {
		case err != nil:
			log.WarnContext(ctx, "an earlier attempt may have paged; cannot tell, paging again", "err", err)
			note = "an earlier attempt was cut short and the provider could not say whether it went out; paged again"
		case found:
			log.InfoContext(ctx, "an earlier attempt had paged; recorded, not sent again", "provider_id", pid)
			w.results.WithLabelValues(string(d.Channel), "found").Inc()
			return w.sent(ctx, log, d, pid, "")
		}
		// BeginDelivery hands over a cut-short attempt whatever became of
		// the incident, so that the record says what happened; a page it
		// no longer needs is not sent again.
		if !stillNeeded(c.Incident, d) {
			log.InfoContext(ctx, "an earlier attempt was cut short; the incident needs no page any more",
				"status", c.Incident.Status)
			_, err := w.cfg.Store.CancelDelivery(ctx, d.ID, "cut short; not sent again: the incident is "+
				string(c.Incident.Status))
			return err
		}
	}

	pid, err := sender.Send(ctx, page)
	if err == nil {
		w.results.WithLabelValues(string(d.Channel), "sent").Inc()
		return w.sent(ctx, log, d, pid, note)
	}
	if errors.Is(err, oncall.ErrPermanent) {
		return w.fail(ctx, log, d, errorText(err))
	}
	if d.Attempts >= w.cfg.MaxAttempts {
		return w.fail(ctx, log, d, fmt.Sprintf("%s (after %d attempts)", errorText(err), d.Attempts))
	}
	retry := storage.Retry{Error: errorText(err), Delay: w.backoff(d.Attempts)}
	var asked interface{ RetryDelay() time.Duration }
	if errors.As(err, &asked) && asked.RetryDelay() > 0 {
		// A rate limit: the page was refused, and waiting is all it takes.
		retry.Delay, retry.RateLimited = asked.RetryDelay(), true
	} else {
		retry.Uncertain = mayHaveReached(err)
	}
	if err := w.cfg.Store.RetryDelivery(ctx, d.ID, retry); err != nil {
		return err
	}
	w.results.WithLabelValues(string(d.Channel), "retry").Inc()
	log.InfoContext(ctx, "page failed; will retry", "err", err, "retry_in", retry.Delay, "uncertain", retry.Uncertain)
	return &retryLater{delay: retry.Delay, err: err}
}

// stillNeeded says whether the incident still wants the page d: it is not
// resolved, and not acknowledged after d was planned.
func stillNeeded(inc oncall.Incident, d oncall.Delivery) bool {
	switch inc.Status {
	case oncall.StatusResolved:
		return false
	case oncall.StatusAcknowledged:
		return d.CreatedAt.After(inc.AckedAt)
	}
	return true
}

// sent records a page the provider accepted and announces it.
func (w *Worker) sent(ctx context.Context, log *slog.Logger, d oncall.Delivery, providerID, note string) error {
	ok, err := w.cfg.Store.DeliverySent(ctx, d.ID, providerID, note)
	if err != nil {
		// The page went out: the next attempt finds it by reconciling.
		return err
	}
	if ok {
		log.InfoContext(ctx, "paged", "provider_id", providerID)
		w.announce(ctx, log, d.IncidentID)
	}
	return nil
}

// fail records that a delivery failed for good, which falls back to the
// person's next way to be reached, and announces it.
func (w *Worker) fail(ctx context.Context, log *slog.Logger, d oncall.Delivery, why string) error {
	next, ok, err := w.cfg.Store.FailDelivery(ctx, d.ID, why)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	w.results.WithLabelValues(string(d.Channel), "failed").Inc()
	log.WarnContext(ctx, "page failed for good", "why", why)
	if next != nil {
		log.InfoContext(ctx, "falling back", "next_channel", next.Channel, "next_key", next.Key)
		if w.cfg.Wake != nil {
			w.cfg.Wake()
		}
	}
	w.announce(ctx, log, d.IncidentID)
	return nil
}

// announce tells the notifier so that the timeline reaches Slack. A lost
// announcement is logged: the events stay in the database and are posted
// with the incident's next change.
func (w *Worker) announce(ctx context.Context, log *slog.Logger, incidentID int64) {
	if w.cfg.Notifier == nil {
		return
	}
	if err := w.cfg.Notifier.PublishIncidentChanged(ctx, incidentID); err != nil {
		log.WarnContext(ctx, "announce page", "err", err)
	}
}

// backoff is the wait after the attempt-th failed attempt: MinBackoff
// doubling, capped at MaxBackoff, less up to a quarter of jitter.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.MaxBackoff
	if n := max(attempt, 1) - 1; n < 30 {
		d = min(w.cfg.MinBackoff<<n, w.cfg.MaxBackoff)
	}
	return d - rand.N(d/4+1)
}

// mayHaveReached says whether a failed call may have reached the provider
// anyway: anything but a connection that was never made. A timeout or a
// server error may come after the provider took the page (Slack answering
// 500 to a message it posted); the next attempt asks the provider first.
func mayHaveReached(err error) bool {
	if errors.Is(err, oncall.ErrPermanent) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var dns *net.DNSError
	return !errors.As(err, &dns)
}

// errorText is an error as the timeline shows it: bounded.
func errorText(err error) string {
	const max = 300
	s := err.Error()
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
