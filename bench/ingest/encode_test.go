package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/integrations"
)

// The costs behind the ingest figures of docs/benchmarks.md, on the body
// the load sends:
//
//	go test -run '^$' -bench . -benchmem ./bench/ingest

func benchBody(b *testing.B) []byte {
	b.Helper()
	return newAlert("c16-oncall", 12345, false).body
}

// BenchmarkParseWebhook is oncall's parser of the webhook body (its typed
// fast path, since 2026-11-25; the document parser it falls back to is
// BenchmarkParseWebhookDocument in ./integrations).
func BenchmarkParseWebhook(b *testing.B) {
	body := benchBody(b)
	for b.Loop() {
		if _, err := integrations.ParseWebhook(body, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStruct decodes the same body into a struct of its fields:
// the floor of a typed fast path.
func BenchmarkDecodeStruct(b *testing.B) {
	body := benchBody(b)
	for b.Loop() {
		var a webhookAlert
		if err := json.Unmarshal(body, &a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeOncallBatch encodes the batch oncall queues for the body
// with json.Marshal, as ingest did twice per request before 2026-11-25.
// Ingest now encodes it once, without reflection (BenchmarkEncodeBatch in
// ./integrations); BenchmarkHandler shows the whole handler.
func BenchmarkEncodeOncallBatch(b *testing.B) {
	body := benchBody(b)
	batch, err := integrations.ParseWebhook(body, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	batch.ID, batch.Integration, batch.Kind, batch.Raw = newID(), "bench-0", "webhook", body
	benchEncode(b, batch)
}

// BenchmarkEncodeBaselineBatch encodes the baseline's batch for the body.
func BenchmarkEncodeBaselineBatch(b *testing.B) {
	body := benchBody(b)
	benchEncode(b, oncall.AlertBatch{ID: newID(), Integration: "baseline", Kind: "webhook",
		ReceivedAt: time.Now().UTC(), Status: oncall.AlertFiring, Raw: body})
}

func benchEncode(b *testing.B, batch oncall.AlertBatch) {
	var size int
	for b.Loop() {
		data, err := json.Marshal(batch)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "msg-bytes")
	b.ReportMetric(float64(len(batch.Raw)), "body-bytes")
}

// BenchmarkHandler is oncall's whole ingest handler on the body, with the
// queue replaced by a publisher that encodes what it is given (as the
// queue does) and drops it: the handler's CPU without NATS and the network.
func BenchmarkHandler(b *testing.B) {
	body := benchBody(b)
	var ins []oncall.Integration
	for i := range 40 {
		ins = append(ins, oncall.Integration{Name: fmt.Sprintf("bench-%d", i), Kind: "webhook",
			Token: fmt.Sprintf("token-%d", i), Channel: fmt.Sprintf("C%d", i)})
	}
	pub := &discardPublisher{}
	h := integrations.NewHandler(ins, pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	mux := http.NewServeMux()
	h.Register(mux)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/integrations/webhook/token-7", bytes.NewReader(body))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(pub.bytes)/float64(b.N), "msg-bytes")
}

// discardPublisher takes batches as the queue does, without storing them.
type discardPublisher struct{ bytes int }

func (p *discardPublisher) PublishAlert(_ context.Context, b oncall.AlertBatch) error {
	data, err := json.Marshal(b)
	p.bytes += len(data)
	return err
}

func (p *discardPublisher) PublishAlertData(_ context.Context, _, _ string, data []byte) error {
	p.bytes += len(data)
	return nil
}
