package integrations

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
)

// testNow is the receive time the parser tests use.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestParseGolden parses every testdata/<kind>/*.json and compares the
// normalized batch with the .golden file next to it.
func TestParseGolden(t *testing.T) {
	for kind, parse := range builtinParsers() {
		inputs, err := filepath.Glob(filepath.Join("testdata", kind, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(inputs) == 0 {
			t.Errorf("no golden inputs for kind %q under testdata/%s", kind, kind)
		}
		for _, in := range inputs {
			name := kind + "/" + strings.TrimSuffix(filepath.Base(in), ".json")
			t.Run(name, func(t *testing.T) {
				body, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				b, err := parse(body, testNow)
				if err != nil {
					t.Fatalf("parse %s: %v", in, err)
				}
				checkBatch(t, b)
				got, err := json.MarshalIndent(b, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
				golden.Check(t, strings.TrimSuffix(in, ".json")+".golden", got)
			})
		}
	}
}

// badInput is a body a parser must reject with exactly wantErr.
type badInput struct {
	kind    string
	name    string
	body    string
	wantErr string
}

const amAlert = `{"status":"firing","labels":{"alertname":"A"}}`

func amBody(alerts string) string {
	return `{"version":"4","groupKey":"g","status":"firing","alerts":[` + alerts + `]}`
}

var badInputs = []badInput{
	// Both kinds share the document checks.
	{"webhook", "empty body", ``, "empty body: expected a JSON object"},
	{"webhook", "whitespace body", " \n", "empty body: expected a JSON object"},
	{"webhook", "malformed JSON", `{"title": "x",}`, "malformed JSON at byte 15: invalid character '}' looking for beginning of object key string"},
	{"webhook", "truncated body", `{"title": "Disk fu`, "malformed JSON at byte 18: unexpected end of JSON input"},
	{"webhook", "trailing garbage", `{"title": "x"} {}`, "malformed JSON at byte 16: invalid character '{' after top-level value"},
	{"webhook", "array instead of object", `[{"title": "x"}]`, "expected a JSON object, got array"},
	{"webhook", "string instead of object", `"x"`, "expected a JSON object, got string"},
	{"webhook", "null", `null`, "expected a JSON object, got null"},
	{"alertmanager", "array instead of object", `[]`, "expected a JSON object, got array"},
	{"alertmanager", "truncated body", `{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"fir`, "malformed JSON at byte 72: unexpected end of JSON input"},

	{"webhook", "blank title", `{"title": " \t"}`, "title: required"},
	{"webhook", "NUL title", `{"title": "\u0000"}`, "title: required"},
	{"webhook", "NUL and blank title", `{"title": "\u0000 \u0000"}`, "title: required"},
	{"webhook", "title not a string", `{"title": 42}`, "title: expected string, got number"},
	{"webhook", "message not a string", `{"title": "t", "message": ["a"]}`, "message: expected string, got array"},
	{"webhook", "bad status", `{"title": "t", "status": "ok"}`, `status: must be firing or resolved, got "ok"`},
	{"webhook", "status not a string", `{"title": "t", "status": true}`, "status: expected string, got boolean"},
	{"webhook", "unknown severity", `{"title": "t", "severity": "bad"}`, `severity: unknown severity "bad" (want critical, error, warning or info)`},
	{"webhook", "relative link", `{"title": "t", "link": "/d/abc"}`, "link: must be an absolute http or https URL"},
	{"webhook", "javascript link", `{"title": "t", "link": "javascript:alert(1)"}`, "link: must be an absolute http or https URL"},
	{"webhook", "bad image_url", `{"title": "t", "image_url": "http://exa mple.com/%zz"}`, "image_url: not a valid URL"},
	{"webhook", "labels not an object", `{"title": "t", "labels": ["a"]}`, "labels: expected object, got array"},
	{"webhook", "non-string label", `{"title": "t", "labels": {"team": "a", "replicas": 3}}`, "labels.replicas: expected string, got number"},
	{"webhook", "bool label with odd key", `{"title": "t", "labels": {"is.prod": true}}`, `labels["is.prod"]: expected string, got boolean`},
	{"webhook", "empty label key", `{"title": "t", "labels": {"": "x"}}`, "labels: empty key"},
	{"webhook", "NUL label key", `{"title": "t", "labels": {"\u0000": "x"}}`, "labels: empty key"},

	{"alertmanager", "missing groupKey", `{"status":"firing","alerts":[` + amAlert + `]}`, "groupKey: required"},
	{"alertmanager", "NUL groupKey", `{"groupKey":"\u0000","status":"firing","alerts":[` + amAlert + `]}`, "groupKey: required"},
	{"alertmanager", "groupKey not a string", `{"groupKey":{},"status":"firing","alerts":[` + amAlert + `]}`, "groupKey: expected string, got object"},
	{"alertmanager", "missing status", `{"groupKey":"g","alerts":[` + amAlert + `]}`, "status: required"},
	{"alertmanager", "bad status", `{"groupKey":"g","status":"pending","alerts":[` + amAlert + `]}`, `status: must be firing or resolved, got "pending"`},
	{"alertmanager", "version not a string", `{"version":4,"groupKey":"g","status":"firing","alerts":[` + amAlert + `]}`, "version: expected string, got number"},
	{"alertmanager", "negative truncatedAlerts", `{"groupKey":"g","status":"firing","truncatedAlerts":-1,"alerts":[` + amAlert + `]}`, `truncatedAlerts: expected a non-negative integer, got "-1"`},
	{"alertmanager", "missing alerts", `{"groupKey":"g","status":"firing"}`, "alerts: must hold at least one alert"},
	{"alertmanager", "empty alerts", amBody(``), "alerts: must hold at least one alert"},
	{"alertmanager", "alerts not an array", `{"groupKey":"g","status":"firing","alerts":{}}`, "alerts: expected array, got object"},
	{"alertmanager", "alert not an object", amBody(amAlert + `,"x"`), "alerts[1]: expected object, got string"},
	{"alertmanager", "commonLabels not an object", `{"groupKey":"g","status":"firing","commonLabels":"x","alerts":[` + amAlert + `]}`, "commonLabels: expected object, got string"},
	{"alertmanager", "labels not an object", amBody(`{"status":"firing","labels":[]}`), "alerts[0].labels: expected object, got array"},
	{"alertmanager", "third alert labels wrong", amBody(amAlert + `,` + amAlert + `,{"status":"firing","labels":"x"}`), "alerts[2].labels: expected object, got string"},
	{"alertmanager", "one bad status among many", amBody(amAlert + `,` + amAlert + `,` + amAlert + `,{"status":"ok"}`), `alerts[3].status: must be firing or resolved, got "ok"`},
	{"alertmanager", "alert without status", amBody(`{"labels":{}}`), "alerts[0].status: required"},
	{"alertmanager", "non-string label", amBody(`{"status":"firing","labels":{"alertname":"A","code":500}}`), "alerts[0].labels.code: expected string, got number"},
	{"alertmanager", "null annotation value", amBody(`{"status":"firing","annotations":{"summary":null}}`), "alerts[0].annotations.summary: expected string, got null"},
	{"alertmanager", "bad startsAt", amBody(`{"status":"firing","startsAt":"yesterday"}`), `alerts[0].startsAt: expected an RFC 3339 time, got "yesterday"`},
	{"alertmanager", "endsAt not a string", amBody(`{"status":"resolved","endsAt":1700000000}`), "alerts[0].endsAt: expected string, got number"},
	{"alertmanager", "endsAt beyond year 9999 in UTC", amBody(`{"status":"resolved","endsAt":"9999-12-31T23:59:59-05:00"}`), `alerts[0].endsAt: time out of range: "9999-12-31T23:59:59-05:00"`},
}

func TestParseBadInput(t *testing.T) {
	parsers := builtinParsers()
	for _, tc := range badInputs {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			b, err := parsers[tc.kind]([]byte(tc.body), testNow)
			if err == nil {
				t.Fatalf("parse succeeded, want error %q; batch %+v", tc.wantErr, b)
			}
			if _, ok := errors.AsType[*InputError](err); !ok {
				t.Errorf("error %v is %T, want *InputError", err, err)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tc.wantErr)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	manyLabels := make(map[string]string)
	for i := range maxMapEntries + 1 {
		manyLabels[strings.Repeat("k", i+1)] = "v"
	}
	tooMany, err := json.Marshal(map[string]any{"title": "t", "labels": manyLabels})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseWebhook(tooMany, testNow); err == nil || err.Error() != "labels: more than 128 entries" {
		t.Errorf("129 labels: got error %v, want labels: more than 128 entries", err)
	}

	longKey, err := json.Marshal(map[string]any{"title": "t", "labels": map[string]string{strings.Repeat("k", maxKeyBytes+1): "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseWebhook(longKey, testNow); err == nil || !strings.HasSuffix(err.Error(), "key longer than 256 bytes") {
		t.Errorf("long label key: got error %v", err)
	}

	longLink := `{"title":"t","link":"https://example.com/` + strings.Repeat("a", maxURLBytes) + `"}`
	if _, err := ParseWebhook([]byte(longLink), testNow); err == nil || err.Error() != "link: longer than 8192 bytes" {
		t.Errorf("long link: got error %v", err)
	}

	// Long identifiers are hashed, so distinct ones stay distinct.
	long1 := strings.Repeat("x", maxIDBytes) + "1"
	long2 := strings.Repeat("x", maxIDBytes) + "2"
	b1, err1 := ParseWebhook([]byte(`{"title":"t","dedup_key":"`+long1+`"}`), testNow)
	b2, err2 := ParseWebhook([]byte(`{"title":"t","dedup_key":"`+long2+`"}`), testNow)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if b1.GroupKey == b2.GroupKey || len(b1.GroupKey) > len("dedup:")+maxIDBytes {
		t.Errorf("long dedup keys: group keys %q and %q, want distinct and bounded", b1.GroupKey, b2.GroupKey)
	}
}

// TestParseGrouping checks the grouping rules the docs promise.
func TestParseGrouping(t *testing.T) {
	tests := []struct {
		name string
		a, b string // two webhook bodies
		same bool   // whether they form one group
	}{
		{"same title", `{"title":"Disk full"}`, `{"title":" Disk full ","status":"resolved"}`, true},
		{"different titles", `{"title":"Disk full"}`, `{"title":"Disk almost full"}`, false},
		{"same dedup key, other titles", `{"title":"a","dedup_key":"k"}`, `{"title":"b","dedup_key":"k"}`, true},
		{"dedup key is not a title", `{"title":"k"}`, `{"title":"x","dedup_key":"k"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseWebhook([]byte(tc.a), testNow)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseWebhook([]byte(tc.b), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if same := a.GroupKey == b.GroupKey; same != tc.same {
				t.Errorf("group keys %q and %q: same=%v, want %v", a.GroupKey, b.GroupKey, same, tc.same)
			}
		})
	}

	// An Alertmanager alert without fingerprint gets one from its labels,
	// whatever their order.
	x, err := ParseAlertmanager([]byte(amBody(`{"status":"firing","labels":{"a":"1","b":"2"}}`)), testNow)
	if err != nil {
		t.Fatal(err)
	}
	y, err := ParseAlertmanager([]byte(amBody(`{"status":"firing","labels":{"b":"2","a":"1"}}`)), testNow)
	if err != nil {
		t.Fatal(err)
	}
	z, err := ParseAlertmanager([]byte(amBody(`{"status":"firing","labels":{"a":"1","b":"3"}}`)), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if x.Alerts[0].Fingerprint != y.Alerts[0].Fingerprint || x.Alerts[0].Fingerprint == z.Alerts[0].Fingerprint {
		t.Errorf("fingerprints %q, %q (same labels) and %q (other labels)", x.Alerts[0].Fingerprint, y.Alerts[0].Fingerprint, z.Alerts[0].Fingerprint)
	}
}

// checkBatch fails t unless b satisfies what every parser promises.
func checkBatch(t *testing.T, b oncall.AlertBatch) {
	t.Helper()
	for _, p := range batchProblems(b) {
		t.Error(p)
	}
}

// batchProblems lists how b breaks the invariants of a parsed batch.
func batchProblems(b oncall.AlertBatch) []string {
	var problems []string
	if b.GroupKey == "" {
		problems = append(problems, "empty group key")
	}
	if !validStatus(b.Status) {
		problems = append(problems, "batch status "+string(b.Status))
	}
	if !validSeverity(b.Severity) {
		problems = append(problems, "batch severity "+string(b.Severity))
	}
	if strings.TrimSpace(b.Title) == "" {
		problems = append(problems, "empty title")
	}
	if len(b.Alerts) == 0 {
		problems = append(problems, "no alerts")
	}
	texts := []string{b.GroupKey, b.Title, b.Message, b.Link, b.ImageURL}
	texts = appendMap(texts, b.Labels)
	for i, a := range b.Alerts {
		if strings.TrimSpace(a.Title) == "" {
			problems = append(problems, fmt.Sprintf("alert %d: empty title", i))
		}
		if a.Fingerprint == "" {
			problems = append(problems, fmt.Sprintf("alert %d: empty fingerprint", i))
		}
		if !validStatus(a.Status) {
			problems = append(problems, fmt.Sprintf("alert %d: status %q", i, a.Status))
		}
		if !validSeverity(a.Severity) {
			problems = append(problems, fmt.Sprintf("alert %d: severity %q", i, a.Severity))
		}
		texts = append(texts, a.Fingerprint, a.Title, a.Message, a.Link, a.ImageURL)
		texts = appendMap(texts, a.Labels)
		texts = appendMap(texts, a.Annotations)
	}
	for _, s := range texts {
		if !utf8.ValidString(s) {
			problems = append(problems, fmt.Sprintf("invalid UTF-8: %q", s))
		}
		if strings.IndexByte(s, 0) >= 0 {
			problems = append(problems, fmt.Sprintf("NUL byte: %q", s))
		}
	}
	if utf8.RuneCountInString(b.Title) > maxTitleRunes {
		problems = append(problems, "title too long")
	}
	if _, err := json.Marshal(b); err != nil {
		problems = append(problems, "cannot encode: "+err.Error())
	}
	return problems
}

// appendMap appends the keys and values of m to texts; an empty key is
// appended as "\x00", which batchProblems reports.
func appendMap(texts []string, m map[string]string) []string {
	for k, v := range m {
		if strings.TrimSpace(k) == "" {
			k = "\x00"
		}
		texts = append(texts, k, v)
	}
	return texts
}

func validStatus(s oncall.AlertStatus) bool {
	return s == oncall.AlertFiring || s == oncall.AlertResolved
}

func validSeverity(s oncall.Severity) bool {
	switch s {
	case oncall.SeverityCritical, oncall.SeverityError, oncall.SeverityWarning, oncall.SeverityInfo:
		return true
	}
	return false
}
