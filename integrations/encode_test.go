package integrations

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
	"time"

	"github.com/oncallbot/oncall"
)

// rawBodies are valid JSON documents that json.Marshal changes when it
// copies them as a json.RawMessage, and some it keeps.
var rawBodies = []string{
	`{"title":"plain"}`,
	" {\n\t\"title\" : \"spaced\" ,\r\n \"labels\" : { \"a b\" : \"c d\" } , \"n\" : [ 1 , 2.5e3 , true , null ] }\n",
	`{"title":"<b>&amp;</b>","message":"a > b && c < d"}`,
	"{\"title\":\"line\u2028para\u2029end\",\"k\u2028\":\"\u2027\u202a\"}",
	`{"title":"escapes \" \\ \/ \b \f \n \r \t \u003c \u2028 \ud83d\ude00","x":"\\"}`,
	`{"title":"utf-8 é 日本 😀","a":{"b":[{"c":"\\\""}]}}`,
	`[1, "two", {"three": [ ]}]`,
	`"just a string with <tags>"`,
	` 12 `,
}

// TestAppendCompactJSON checks that appendCompactJSON copies a valid JSON
// document exactly as json.Marshal copies a json.RawMessage.
func TestAppendCompactJSON(t *testing.T) {
	for _, body := range rawBodies {
		checkCompact(t, []byte(body))
	}
	for _, in := range goldenInputs(t) {
		body, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		checkCompact(t, body)
	}
}

func FuzzAppendCompactJSON(f *testing.F) {
	for _, body := range rawBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if json.Valid(body) {
			checkCompact(t, body)
		}
	})
}

func checkCompact(t *testing.T, body []byte) {
	t.Helper()
	want, err := json.Marshal(json.RawMessage(body))
	if err != nil {
		t.Fatalf("marshal %q: %v", body, err)
	}
	prefix := []byte("prefix")
	got := appendCompactJSON(bytes.Clone(prefix), body)
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Errorf("appendCompactJSON(%q)\n got %q\nwant %q", body, got, append(prefix, want...))
	}
}

// TestEncodeBatch checks that encodeBatch produces the bytes json.Marshal
// produces for the batch with its raw body, or without it when the batch
// would be too large, for every golden input and the bodies above.
func TestEncodeBatch(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	bodies := map[string][]byte{}
	for _, in := range goldenInputs(t) {
		body, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		bodies[in] = body
	}
	for i, body := range rawBodies {
		bodies["raw body "+string(rune('a'+i))] = []byte(body)
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			b := oncall.AlertBatch{
				ID: "0f8a3c52-7d2e-4b1a-9c3e-5d6f7a8b9c0d", Integration: "hooks", Kind: "webhook", ReceivedAt: now,
				GroupKey: "dedup:k", Status: oncall.AlertFiring, Title: "t <&>", Severity: oncall.SeverityWarning,
				Labels: map[string]string{"b": "2", "a": "1"},
				Alerts: []oncall.Alert{{Fingerprint: "k", Status: oncall.AlertFiring, Title: "t", StartsAt: now}},
			}
			raw := storableJSON(body)
			withRaw := b
			withRaw.Raw = raw
			want, err := json.Marshal(withRaw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeBatch(&b, raw, len(want))
			if err != nil || !bytes.Equal(got, want) || !bytes.Equal(b.Raw, raw) {
				t.Fatalf("encodeBatch with room: %v, b.Raw %q\n got %s\nwant %s", err, b.Raw, got, want)
			}

			b.Raw = nil
			wantSmall, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err = encodeBatch(&b, raw, len(want)-1)
			if err != nil || !bytes.Equal(got, wantSmall) || b.Raw != nil {
				t.Errorf("encodeBatch one byte short: %v, b.Raw %q\n got %s\nwant %s", err, b.Raw, got, wantSmall)
			}
			got, err = encodeBatch(&b, nil, len(want))
			if err != nil || !bytes.Equal(got, wantSmall) || b.Raw != nil {
				t.Errorf("encodeBatch without raw: %v, b.Raw %q\n got %s\nwant %s", err, b.Raw, got, wantSmall)
			}
		})
	}
}

// goldenInputs lists the golden inputs of every kind.
func goldenInputs(t *testing.T) []string {
	t.Helper()
	var all []string
	for kind := range builtinParsers() {
		inputs, err := filepath.Glob(filepath.Join("testdata", kind, "*.json"))
		if err != nil || len(inputs) == 0 {
			t.Fatalf("golden inputs of %s: %v", kind, err)
		}
		all = append(all, inputs...)
	}
	return all
}

// TestWriteAccepted checks that the hand-encoded 202 is what writeJSON
// writes for the same acceptedResponse, headers included.
func TestWriteAccepted(t *testing.T) {
	for _, n := range []int{0, 1, 3, 1234} {
		id := newBatchID()
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		if code := writeAccepted(got, id, n); code != http.StatusAccepted {
			t.Errorf("writeAccepted returned %d, want 202", code)
		}
		writeJSON(want, http.StatusAccepted, acceptedResponse{Status: "accepted", ID: id, Alerts: n})
		if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
			t.Errorf("writeAccepted(%q, %d): %d %v %q, want %d %v %q", id, n,
				got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}

// TestReadBody checks that readBody reads everything whatever the declared
// length, and passes on read errors.
func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	for _, length := range []int64{-1, 0, 1, 999, 1000, 1001, 5000, MaxBodyBytes + 1} {
		got, err := readBody(iotest.HalfReader(bytes.NewReader(body)), length)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("readBody with length %d: %d bytes, %v; want the %d bytes", length, len(got), err, len(body))
		}
	}
	boom := errors.New("boom")
	if _, err := readBody(iotest.TimeoutReader(bytes.NewReader(body)), 1000); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("readBody of a failing reader: %v, want %v", err, iotest.ErrTimeout)
	}
	if _, err := readBody(iotest.ErrReader(boom), 10); !errors.Is(err, boom) {
		t.Errorf("readBody of a failing reader: %v, want %v", err, boom)
	}
}

// The encoding of the batch of a full webhook, as ingest does it now and as
// json.Marshal does it (which ingest did twice per request before):
//
//	go test -run '^$' -bench Encode -benchmem ./integrations
func BenchmarkEncodeBatch(b *testing.B) {
	batch, body := benchBatch(b)
	raw := storableJSON(body)
	for b.Loop() {
		if _, err := encodeBatch(&batch, raw, DefaultMaxBatchBytes); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBatchMarshal(b *testing.B) {
	batch, body := benchBatch(b)
	batch.Raw = storableJSON(body)
	for b.Loop() {
		if _, err := json.Marshal(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBatch(b *testing.B) (oncall.AlertBatch, []byte) {
	body, err := os.ReadFile(filepath.Join("testdata", "webhook", "firing_full.json"))
	if err != nil {
		b.Fatal(err)
	}
	batch, err := ParseWebhook(body, testNow)
	if err != nil {
		b.Fatal(err)
	}
	batch.ID, batch.Integration, batch.Kind, batch.ReceivedAt = newBatchID(), "hooks", "webhook", testNow
	return batch, body
}

// The raw body alone: json.Marshal validates and compacts a
// json.RawMessage on every call; appendCompactJSON only compacts.
func BenchmarkRawMarshal(b *testing.B) {
	_, body := benchBatch(b)
	for b.Loop() {
		if _, err := json.Marshal(json.RawMessage(body)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawCompact(b *testing.B) {
	_, body := benchBatch(b)
	buf := make([]byte, 0, 2*len(body))
	for b.Loop() {
		buf = appendCompactJSON(buf[:0], body)
	}
}
