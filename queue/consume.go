package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oncallbot/oncall"
)

const (
	// ackWait is how long the server waits for an ack before it hands the
	// message to another consumer: after a crash, the work the dead process
	// held is taken up again this much later. A running handler keeps its
	// message with a progress signal every progressEvery.
	ackWait       = 10 * time.Second
	progressEvery = 3 * time.Second
	// handlerTimeout bounds one handler call.
	handlerTimeout = 25 * time.Second
	// ackTimeout bounds waiting for the server to confirm an ack.
	ackTimeout = 5 * time.Second

	// Redelivery after a handler error: exponential from minRetryDelay,
	// capped at maxRetryDelay.
	minRetryDelay = 250 * time.Millisecond
	maxRetryDelay = time.Minute

	// Re-subscribing after the consumer went away (deleted, stream lost).
	minResubscribeDelay = time.Second
	maxResubscribeDelay = 30 * time.Second
)

// consumerSpec names a durable consumer and the stream it reads.
type consumerSpec struct {
	stream  string
	durable string
	filter  string // subjects it takes; consumers of one work queue stream must not overlap
}

// The consumers of the NOTIFY stream.
var (
	notifierSpec = consumerSpec{stream: streamNotify, durable: "notifier", filter: subjectIncident + ">"}
	pagerSpec    = consumerSpec{stream: streamNotify, durable: "pager", filter: subjectDelivery + ">"}
)

// ConsumeAlerts hands every batch on the ALERTS stream to h, through the
// durable consumer "processor" that all replicas share. A batch is acked
// after h returns nil and redelivered with backoff after an error. It
// blocks until ctx is done (or Close is called), lets the batches in hand
// finish, and returns nil.
func (q *Queue) ConsumeAlerts(ctx context.Context, h func(ctx context.Context, b oncall.AlertBatch) error) error {
	return consume(ctx, q, consumerSpec{stream: streamAlerts, durable: "processor"}, decodeAlertBatch, h)
}

// ConsumeIncidentChanges hands every incident change on the NOTIFY stream
// to h, through the durable consumer "notifier" that all replicas share.
// It behaves like ConsumeAlerts.
func (q *Queue) ConsumeIncidentChanges(ctx context.Context, h func(ctx context.Context, incidentID int64) error) error {
	return consume(ctx, q, notifierSpec, decodeIncidentChanged, h)
}

// ConsumeDeliveries hands every delivery on the NOTIFY stream (see
// PublishDeliveries) to h, through the durable consumer "pager" that all
// replicas share. It behaves like ConsumeAlerts: an error that has a
// RetryDelay() is retried after that delay.
func (q *Queue) ConsumeDeliveries(ctx context.Context, h func(ctx context.Context, deliveryID int64) error) error {
	return consume(ctx, q, pagerSpec, decodeDelivery, h)
}

func decodeDelivery(data []byte) (int64, error) {
	var m deliveryMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("decode delivery: %w", err)
	}
	if m.DeliveryID <= 0 {
		return 0, fmt.Errorf("decode delivery: invalid delivery id %d", m.DeliveryID)
	}
	return m.DeliveryID, nil
}

func decodeAlertBatch(data []byte) (oncall.AlertBatch, error) {
	var b oncall.AlertBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return oncall.AlertBatch{}, fmt.Errorf("decode alert batch: %w", err)
	}
	return b, nil
}

func decodeIncidentChanged(data []byte) (int64, error) {
	var m incidentChanged
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("decode incident change: %w", err)
	}
	if m.IncidentID <= 0 {
		return 0, fmt.Errorf("decode incident change: invalid incident id %d", m.IncidentID)
	}
	return m.IncidentID, nil
}

// consumer runs one Consume call: a dispatcher that pulls a message
// whenever one of its workers is free.
type consumer[T any] struct {
	q      *Queue
	spec   consumerSpec
	log    *slog.Logger
	decode func([]byte) (T, error)
	handle func(context.Context, T) error
	slots  chan struct{} // one token per busy worker
	busy   sync.WaitGroup
}

func consume[T any](ctx context.Context, q *Queue, spec consumerSpec, decode func([]byte) (T, error), h func(context.Context, T) error) error {
	if err := q.startConsumer(); err != nil {
		return fmt.Errorf("consume %s: %w", spec.durable, err)
	}
	defer q.consumers.Done()

	// stop ends pulling; handlers keep ctx's values but not its cancellation.
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(q.stopping, cancel)()

	c := &consumer[T]{
		q:      q,
		spec:   spec,
		log:    q.log.With("stream", spec.stream, "consumer", spec.durable),
		decode: decode,
		handle: h,
		slots:  make(chan struct{}, q.workers),
	}
	defer c.busy.Wait()

	// The first subscription must work: an error here is a misconfiguration
	// the caller should see. Later failures are retried.
	it, err := c.subscribe(stop)
	if err != nil {
		if stop.Err() != nil {
			return nil
		}
		return err
	}
	c.log.Info("consuming", "workers", q.workers)
	delay := minResubscribeDelay
	for {
		got, err := c.dispatch(ctx, stop, it)
		if stop.Err() != nil {
			return nil
		}
		if q.nc.IsClosed() {
			return fmt.Errorf("consume %s: NATS connection closed: %w", spec.durable, err)
		}
		if got {
			delay = minResubscribeDelay
		}
		c.log.Warn("consumer stopped; subscribing again", "err", err)
		if it = c.resubscribe(stop, &delay); it == nil {
			return nil
		}
	}
}

// resubscribe retries subscribe with growing delays until it works; it
// returns nil when ctx is done first.
func (c *consumer[T]) resubscribe(ctx context.Context, delay *time.Duration) jetstream.MessagesContext {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*delay):
		}
		*delay = min(2**delay, maxResubscribeDelay)
		it, err := c.subscribe(ctx)
		if err == nil {
			return it
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("subscribe again", "err", err, "retry_in", *delay)
	}
}

// subscribe creates (or updates) the stream and the durable consumer and
// starts pulling from it.
func (c *consumer[T]) subscribe(ctx context.Context) (jetstream.MessagesContext, error) {
	cons, err := c.q.js.CreateOrUpdateConsumer(ctx, c.spec.stream, jetstream.ConsumerConfig{
		Durable:       c.spec.durable,
		Description:   "oncall " + c.spec.durable,
		FilterSubject: c.spec.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on stream %s: %w", c.spec.durable, c.spec.stream, err)
	}
	// One message per pull: a message waits on the server, where any
	// replica's free worker can take it, rather than in a busy one's buffer.
	it, err := cons.Messages(jetstream.PullMaxMessages(1), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return nil, fmt.Errorf("pull from consumer %s: %w", c.spec.durable, err)
	}
	return it, nil
}

// dispatch hands messages from it to workers until stop is done or the
// iterator fails; the handlers get ctx's values (see process). It reports whether it got any message. On return the
// iterator is closed and messages it had buffered are given back to the
// server; handlers may still be running (c.busy).
func (c *consumer[T]) dispatch(ctx, stop context.Context, it jetstream.MessagesContext) (bool, error) {
	got := false
	var err error
	for {
		select {
		case c.slots <- struct{}{}:
		case <-stop.Done():
			c.giveBack(it)
			return got, nil
		}
		var msg jetstream.Msg
		msg, err = it.Next(jetstream.NextContext(stop))
		if err != nil {
			<-c.slots
			if stop.Err() != nil {
				c.giveBack(it)
				return got, nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return got, err
			}
			// Not fatal for the iterator (e.g. a status from the server):
			// log it and pull again.
			c.log.Warn("pull messages", "err", err)
			continue
		}
		got = true
		c.busy.Add(1)
		go func() {
			defer c.busy.Done()
			defer func() { <-c.slots }()
			c.process(ctx, msg)
		}()
	}
}

// giveBack closes the iterator and naks the messages it had already
// received, so they are redelivered at once instead of after ackWait.
func (c *consumer[T]) giveBack(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(ackTimeout))
		if err != nil {
			return
		}
		if err := msg.Nak(); err != nil {
			c.log.Warn("give back message on shutdown", "subject", msg.Subject(), "err", err)
		}
	}
}

// process decodes msg, runs the handler and acks, terms or naks it.
// ctx supplies values only: shutdown does not cut a handler short.
func (c *consumer[T]) process(ctx context.Context, msg jetstream.Msg) {
	var seq, delivered uint64 = 0, 1
	if md, err := msg.Metadata(); err == nil {
		seq, delivered = md.Sequence.Stream, md.NumDelivered
	}
	log := c.log.With("subject", msg.Subject(), "seq", seq, "delivered", delivered)

	v, err := c.decode(msg.Data())
	if err != nil {
		// It can never succeed: remove it rather than retry forever.
		log.Error("terminating message that cannot be decoded", "err", err)
		if err := msg.TermWithReason(err.Error()); err != nil {
			log.Warn("terminate message", "err", err)
		}
		return
	}

	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handlerTimeout)
	go keepInProgress(hctx, msg, log)
	err = c.call(hctx, v)
	cancel()
	if err != nil {
		delay, asked := nakDelay(err, delivered)
		if asked {
			// Deferred on purpose (a rate limit, a coalescing window): routine.
			log.Debug("handler asked to retry later", "err", err, "retry_in", delay)
		} else {
			log.Warn("handler failed; will retry", "err", err, "retry_in", delay)
		}
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak message; the server redelivers it after the ack wait", "err", err)
		}
		return
	}

	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// The server will redeliver it; handlers are idempotent.
		log.Warn("ack message", "err", err)
	}
}

// retryDelayer is a handler error that knows when to try again, such as a
// rate limit with a Retry-After.
type retryDelayer interface {
	error
	RetryDelay() time.Duration
}

// keepInProgress tells the server the message is being worked on, every
// progressEvery until ctx is done, so that it is not handed to another
// consumer while its handler runs.
func keepInProgress(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := msg.InProgress(); err != nil {
				log.Debug("signal progress", "err", err)
			}
		}
	}
}

// nakDelay is how long a failed message waits: what the error asks for
// (e.g. Slack's Retry-After: sooner is refused, later is slow), else the
// backoff for its delivery count.
// asked says whether the delay came from the error.
func nakDelay(err error, delivered uint64) (delay time.Duration, asked bool) {
	var wait retryDelayer
	if errors.As(err, &wait) && wait.RetryDelay() > 0 {
		return wait.RetryDelay(), true
	}
	return retryDelay(delivered), false
}

// call runs the handler, turning a panic into an error so that one bad
// message does not take the process down.
func (c *consumer[T]) call(ctx context.Context, v T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return c.handle(ctx, v)
}

// retryDelay is the wait before redelivering a message that failed on
// its delivered-th delivery: minRetryDelay doubling per delivery up to
// maxRetryDelay, less up to a quarter of random jitter so that replicas
// retrying the same failure spread out.
func retryDelay(delivered uint64) time.Duration {
	d := maxRetryDelay
	if n := max(delivered, 1) - 1; n < 16 {
		d = min(minRetryDelay<<n, maxRetryDelay)
	}
	return d - rand.N(d/4+1)
}
