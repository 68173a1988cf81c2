package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oncallbot/oncall"
)

// Subject prefixes of the streams.
const (
	subjectAlerts   = "alerts."
	subjectNotify   = "notify."
	subjectIncident = subjectNotify + "incident."
	subjectDelivery = subjectNotify + "delivery."
)

// incidentChanged is the body of a NOTIFY message.
type incidentChanged struct {
	IncidentID int64 `json:"incident_id"`
}

// PublishAlert stores b on the ALERTS stream under alerts.<kind> and
// returns only once JetStream has acknowledged it: a nil error means the
// batch is durable. The batch ID is the message ID, so the same batch
// published twice within two minutes is stored once.
func (q *Queue) PublishAlert(ctx context.Context, b oncall.AlertBatch) error {
	if b.ID == "" {
		return errors.New("publish alert batch: batch has no id")
	}
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode alert batch %q: %w", b.ID, err)
	}
	return q.PublishAlertData(ctx, b.ID, b.Kind, data)
}

// PublishAlertData is PublishAlert for a batch its caller has already
// encoded: data must be the JSON encoding of an oncall.AlertBatch whose ID
// is id and whose Kind is kind. It is stored as given, not checked;
// ConsumeAlerts terminates a message it cannot decode. It lets a caller
// that needs the encoded size anyway (to keep a batch under the maximum
// message size) encode the batch once.
func (q *Queue) PublishAlertData(ctx context.Context, id, kind string, data []byte) error {
	if id == "" {
		return errors.New("publish alert batch: batch has no id")
	}
	subject := subjectAlerts + subjectToken(kind)
	ack, err := q.js.Publish(ctx, subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(streamAlerts))
	if err != nil {
		return fmt.Errorf("publish alert batch %q to %s: %w", id, subject, err)
	}
	if ack.Duplicate {
		q.log.Debug("alert batch already queued", "batch", id, "seq", ack.Sequence)
	}
	return nil
}

// PublishIncidentChanged tells the notifier that an incident changed. It
// returns once JetStream has stored the message.
func (q *Queue) PublishIncidentChanged(ctx context.Context, incidentID int64) error {
	data, err := json.Marshal(incidentChanged{IncidentID: incidentID})
	if err != nil {
		return fmt.Errorf("encode change of incident %d: %w", incidentID, err)
	}
	subject := subjectIncident + strconv.FormatInt(incidentID, 10)
	if _, err := q.js.Publish(ctx, subject, data, jetstream.WithExpectStream(streamNotify)); err != nil {
		return fmt.Errorf("publish change of incident %d: %w", incidentID, err)
	}
	return nil
}

// publishTimeout bounds waiting for the PubAcks of deliveries.
const publishTimeout = 10 * time.Second

// deliveryMsg is the body of a NOTIFY message for a delivery worker.
type deliveryMsg struct {
	DeliveryID int64 `json:"delivery_id"`
}

// PublishDeliveries queues one message per delivery for the delivery
// workers and returns once JetStream stored them all. The delivery key is
// the message id: a delivery published twice within the duplicate window is
// stored once (and a worker skips a delivery already sent anyway).
func (q *Queue) PublishDeliveries(ctx context.Context, ds []oncall.Delivery) error {
	// The caller holds rows locked until this returns: a PubAck that never
	// comes must not hold them for good.
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	acks := make([]jetstream.PubAckFuture, 0, len(ds))
	for _, d := range ds {
		data, err := json.Marshal(deliveryMsg{DeliveryID: d.ID})
		if err != nil {
			return fmt.Errorf("encode delivery %q: %w", d.Key, err)
		}
		subject := subjectDelivery + strconv.FormatInt(d.ID, 10)
		f, err := q.js.PublishAsync(subject, data, jetstream.WithMsgID("delivery:"+d.Key),
			jetstream.WithExpectStream(streamNotify))
		if err != nil {
			return fmt.Errorf("publish delivery %q: %w", d.Key, err)
		}
		acks = append(acks, f)
	}
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish delivery %q: %w", ds[i].Key, err)
		case <-ctx.Done():
			return fmt.Errorf("publish delivery %q: %w", ds[i].Key, ctx.Err())
		}
	}
	return nil
}

// subjectToken makes s safe as one subject token: letters, digits, '_'
// and '-' only, else "other".
func subjectToken(s string) string {
	if s == "" {
		return "other"
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return "other"
		}
	}
	return s
}
