package main

import (
	"encoding/json"
	"testing"
	"time"

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

// BenchmarkParseWebhook is oncall's parser of the webhook body.
func BenchmarkParseWebhook(b *testing.B) {
	body := benchBody(b)
	for b.Loop() {
		if _, err := integrations.ParseWebhook(body, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStruct decodes the same body into a struct of its fields:
// what a typed fast path would cost.
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
// (ingest does it twice per request).
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
