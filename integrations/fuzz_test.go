package integrations

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpora are under testdata/fuzz/<FuzzName>/: the golden inputs
// and a few near misses.

func FuzzParseWebhook(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) { fuzzParser(t, ParseWebhook, body) })
}

func FuzzParseAlertmanager(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) { fuzzParser(t, ParseAlertmanager, body) })
}

func FuzzParseGrafana(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) { fuzzParser(t, ParseGrafana, body) })
}

// fuzzParser checks that parse either rejects body with an *InputError or
// returns a batch that satisfies every invariant, raw body included.
func fuzzParser(t *testing.T, parse Parser, body []byte) {
	b, err := parse(body, testNow)
	if err != nil {
		if _, ok := errors.AsType[*InputError](err); !ok {
			t.Fatalf("error %v is %T, want *InputError", err, err)
		}
		return
	}
	b.Raw = storableJSON(body)
	if b.Raw == nil {
		t.Fatalf("accepted body has no storable raw form: %q", body)
	}
	checkBatch(t, b)
	checkStorableJSON(t, b.Raw)
}

// checkStorableJSON fails t unless raw is valid JSON in valid UTF-8 with no
// NUL character in any string.
func checkStorableJSON(t *testing.T, raw json.RawMessage) {
	t.Helper()
	if !utf8.Valid(raw) || !json.Valid(raw) {
		t.Fatalf("raw is not valid UTF-8 JSON: %q", raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("raw holds a NUL character: %q", raw)
		}
	}
}
