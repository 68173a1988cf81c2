package integrations

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
)

// sentryMapping maps Sentry's issue webhooks (created, resolved, ...).
var sentryMapping = map[string]string{
	"title":         "{{.data.issue.shortId}}: {{.data.issue.title}}",
	"message":       "{{.data.issue.culprit}} ({{.data.issue.project.slug}}, {{.data.issue.count}} events)",
	"dedup_key":     "sentry-{{.data.issue.id}}",
	"severity":      "{{.data.issue.level}}",
	"resolved_when": `{{eq .action "resolved"}}`,
	"link":          "{{.data.issue.web_url}}",
	"image":         `{{get . "data.issue.no.such.image"}}`,
}

// mappingCases are requests to integrations with templates (or without,
// for the defaults): the body is testdata/mapping/NAME.json, the batch is
// compared with NAME.golden.
var mappingCases = []struct {
	name string
	in   oncall.Integration
}{
	{"sentry_issue_created", oncall.Integration{Name: "sentry", Kind: "webhook", Mapping: sentryMapping}},
	{"sentry_issue_resolved", oncall.Integration{Name: "sentry", Kind: "webhook", Mapping: sentryMapping}},
	{"sentry_template_errors", oncall.Integration{Name: "sentry", Kind: "webhook", Mapping: map[string]string{
		"title":     "{{index .data.issue.annotations 0}}", // fails: no annotation
		"severity":  "{{lower .data.issue.level.name}}",    // fails: level is a string
		"dedup_key": "sentry-{{.data.issue.id}}",
	}}},
	// Kapacitor's alert handler: resolved by status, level OK.
	{"kapacitor_ok", oncall.Integration{Name: "kapacitor", Kind: "webhook", Mapping: map[string]string{
		"title":     "{{.id}}",
		"status":    "{{.level}}",
		"severity":  `{{.previousLevel | default .level}}`,
		"dedup_key": "{{.id}}",
		"message":   "{{.message}}\nseries: {{range .data.series}}{{.name}} {{json .tags}}{{end}}",
	}}},
	{"defaults_without_mapping", oncall.Integration{Name: "tools", Kind: "webhook"}},
	{"alertmanager_group_key", oncall.Integration{Name: "prometheus", Kind: "alertmanager",
		GroupKey: "{{.commonLabels.team}}/{{.commonLabels.alertname | lower}}"}},
	{"group_key_empty", oncall.Integration{Name: "scripts", Kind: "webhook", GroupKey: "{{.labels.service}}"}},
}

func TestMappingGolden(t *testing.T) {
	var names []string
	for _, tc := range mappingCases {
		names = append(names, tc.name)
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join("testdata", "mapping", tc.name+".json")
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParserFor(tc.in, tc.in.Kind)(body, testNow)
			if err != nil {
				t.Fatalf("parse %s: %v", in, err)
			}
			checkBatch(t, b)
			got, err := json.MarshalIndent(b, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(in, ".json")+".golden", append(got, '\n'))
		})
	}
	inputs, err := filepath.Glob(filepath.Join("testdata", "mapping", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		if name := strings.TrimSuffix(filepath.Base(in), ".json"); !slices.Contains(names, name) {
			t.Errorf("%s has no case in mappingCases", in)
		}
	}
}

// TestMappingResolves checks the resolve rules of a mapping: status words
// and resolved_when, against the same incident as the firing alert.
func TestMappingResolves(t *testing.T) {
	byStatus := oncall.Integration{Name: "x", Kind: "webhook", Mapping: map[string]string{"status": "{{.s}}", "dedup_key": "k"}}
	byCondition := oncall.Integration{Name: "x", Kind: "webhook", Mapping: map[string]string{"resolved_when": "{{not .alerting}}", "dedup_key": "k"}}
	tests := []struct {
		in   oncall.Integration
		body string
		want oncall.AlertStatus
	}{
		{byStatus, `{"s": "resolved"}`, oncall.AlertResolved},
		{byStatus, `{"s": "OK"}`, oncall.AlertResolved},
		{byStatus, `{"s": " Closed "}`, oncall.AlertResolved},
		{byStatus, `{"s": "inactive"}`, oncall.AlertResolved},
		{byStatus, `{"s": "normal"}`, oncall.AlertResolved},
		{byStatus, `{"s": "alerting"}`, oncall.AlertFiring},
		{byStatus, `{"s": "resolved soon"}`, oncall.AlertFiring},
		// An empty status falls back to the default members.
		{byStatus, `{"state": "ok"}`, oncall.AlertResolved},
		{byStatus, `{}`, oncall.AlertFiring},
		{byCondition, `{"alerting": false}`, oncall.AlertResolved},
		{byCondition, `{"alerting": true}`, oncall.AlertFiring},
		// resolved_when decides alone: "" is not "true".
		{byCondition, `{"alerting": true, "status": "resolved"}`, oncall.AlertFiring},
	}
	for _, tc := range tests {
		b, err := ParserFor(tc.in, "webhook")([]byte(tc.body), testNow)
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if b.Status != tc.want || b.Alerts[0].Status != tc.want || b.GroupKey != "dedup:k" {
			t.Errorf("%s with %v: status %s (alert %s), group %q; want %s, dedup:k", tc.body, tc.in.Mapping, b.Status, b.Alerts[0].Status, b.GroupKey, tc.want)
		}
	}
}

func TestTemplateHelpers(t *testing.T) {
	const payload = `{
		"s": "Hello", "n": 12.50, "big": 12345678901234567890, "t": true, "nul": null,
		"list": ["a", 1, null, {"k": "v"}], "empty": [], "obj": {"a": {"b": "deep"}, "x-y": "dash"}
	}`
	tests := []struct {
		tmpl, want string
	}{
		{"{{.s}}", "Hello"},
		{"{{.n}} {{.big}} {{.t}}", "12.50 12345678901234567890 true"},
		{"[{{.missing}}]", "[]"},
		{"[{{.missing.deeper.still}}]", "[]"},
		{"[{{.nul}}]", "[]"},
		{"[{{.nul.below}}]", "[]"},
		{"{{.obj.a.b}}", "deep"},
		{"{{.obj.a}}", `{"b":"deep"}`},
		{"{{.list}}", `["a",1,null,{"k":"v"}]`},
		{`{{index .obj "x-y"}}`, "dash"},
		{`{{default "none" .missing}}`, "none"},
		{`{{.missing | default "none"}}`, "none"},
		{`{{.empty | default "none"}}`, "none"},
		{`{{.s | default "none"}}`, "Hello"},
		{`{{.t | default "none"}}`, "true"},
		{`{{lower .s}} {{upper .s}} [{{upper .missing}}]`, "hello HELLO []"},
		{`{{join ", " .list}}`, `a, 1, , {"k":"v"}`},
		{`{{.list | join "/"}} [{{join "," .missing}}] {{join "," .s}}`, `a/1//{"k":"v"} [] Hello`},
		{`{{json .obj.a}} {{json .s}} {{json .missing}}`, `{"b":"deep"} "Hello" null`},
		{`{{get . "obj.a.b"}}`, "deep"},
		{`{{get . "list.3.k"}}`, "v"},
		{`[{{get . "list.9.k"}}{{get . "s.x"}}{{get . "obj.nope.b"}}{{get .missing "a"}}]`, "[]"},
		{`{{get .obj "x-y"}}`, "dash"},
		{`{{if .missing}}yes{{else}}no{{end}}`, "no"},
		{`{{range .list}}<{{.}}>{{end}}`, `<a><1><><{"k":"v"}>`},
		{`{{with .obj.a}}{{.b}}{{end}}`, "deep"},
		{`{{$x := .s}}{{$x}}`, "Hello"},
		{`{{define "sub"}}<{{.missing}}>{{end}}{{template "sub" .}}`, "<>"},
		{`{{eq .s "Hello"}} {{eq .missing "x"}}`, "true false"},
		{`{{text .missing}}{{text .n}}`, "12.50"},
		{"  {{.s}}\n", "Hello"},
	}
	body, err := decodePayload([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		tmpl, err := CompileTemplate("t", tc.tmpl)
		if err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		got, err := render(tmpl, body)
		if err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s\n got %q\nwant %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestCompileTemplateErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"title", "{{.data.title", `template: title:1: unclosed action`},
		{"severity", "{{ severity .x }}", `template: severity:1: function "severity" not defined`},
		{"group_key", "{{end}}", `template: group_key:1: unexpected {{end}}`},
	}
	for _, tc := range tests {
		_, err := CompileTemplate(tc.name, tc.text)
		if err == nil || err.Error() != tc.want {
			t.Errorf("CompileTemplate(%q, %q) = %v, want %s", tc.name, tc.text, err, tc.want)
		}
	}
}

// TestTemplateFailuresKeepTheAlert checks that templates that fail, to
// compile or on a payload, never lose the alert.
func TestTemplateFailuresKeepTheAlert(t *testing.T) {
	tests := []struct {
		name     string
		in       oncall.Integration
		body     string
		title    string
		groupKey string
		note     string
	}{
		{
			name: "template does not compile",
			in:   oncall.Integration{Name: "x", Kind: "webhook", Mapping: map[string]string{"title": "{{.a"}},
			body: `{"summary": "from the defaults"}`, title: "from the defaults", groupKey: "title:from the defaults",
			note: "mapping: title: template: title:1: unclosed action",
		},
		{
			name: "output too long",
			in: oncall.Integration{Name: "x", Kind: "webhook", Mapping: map[string]string{
				"message": `{{range .a}}{{range $.a}}{{range $.a}}{{$.pad}}{{end}}{{end}}{{end}}`,
			}},
			body:  `{"name": "n", "a": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20], "pad": "` + strings.Repeat("x", 100) + `"}`,
			title: "n", groupKey: "title:n",
			note: "mapping: message: output longer than 65536 bytes",
		},
		{
			name:  "group key fails",
			in:    oncall.Integration{Name: "x", Kind: "webhook", GroupKey: "{{index .tags 3}}"},
			body:  `{"title": "t", "dedup_key": "k", "tags": ["a"]}`,
			title: "t", groupKey: "dedup:k",
			note: `group_key: template: group_key:1:2: executing "group_key" at <index .tags 3>: error calling index: index out of range: 3; the alert is grouped as its kind does`,
		},
		{
			name:  "group key does not compile",
			in:    oncall.Integration{Name: "x", Kind: "alertmanager", GroupKey: "{{"},
			body:  amBody(amAlert),
			title: "A", groupKey: "am:g",
			note: "group_key: template: group_key:1: unclosed action",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParserFor(tc.in, tc.in.Kind)([]byte(tc.body), testNow)
			if err != nil {
				t.Fatal(err)
			}
			checkBatch(t, b)
			if b.Title != tc.title || b.GroupKey != tc.groupKey || b.Note != tc.note {
				t.Errorf("got title %q, group %q, note\n%q\nwant %q, %q,\n%q", b.Title, b.GroupKey, b.Note, tc.title, tc.groupKey, tc.note)
			}
		})
	}
}

// TestMappedWebhookRejects checks that a mapped webhook still rejects
// what is not a JSON object, as every parser does.
func TestMappedWebhookRejects(t *testing.T) {
	parse := ParserFor(oncall.Integration{Name: "x", Kind: "webhook", Mapping: sentryMapping}, "webhook")
	for _, body := range []string{``, `[]`, `"x"`, `null`, `{"a": 1,}`, `{"a": 1} {}`, `{"a": 1}]`, `{"a": 1`} {
		_, want := ParseWebhook([]byte(body), testNow)
		_, err := parse([]byte(body), testNow)
		if _, ok := errors.AsType[*InputError](err); !ok || want == nil || err.Error() != want.Error() {
			t.Errorf("body %q: got %v, want the error of ParseWebhook, %v", body, err, want)
		}
	}
}

func TestParserFor(t *testing.T) {
	if p := ParserFor(oncall.Integration{Name: "x"}, "no-such-kind"); p != nil {
		t.Error("a parser for a kind without one")
	}
	// Without templates, the builtin parser is used as is.
	body := []byte(amBody(amAlert))
	want, err := ParseAlertmanager(body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParserFor(oncall.Integration{Name: "x", Kind: "alertmanager"}, "alertmanager")(body, testNow)
	if err != nil || got.GroupKey != want.GroupKey || got.Note != "" {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	// A webhook without a mapping keeps our format's rules.
	_, err = ParserFor(oncall.Integration{Name: "x", Kind: "webhook", GroupKey: "{{.a}}"}, "webhook")([]byte(`{"title": "t", "status": "ok"}`), testNow)
	if err == nil || err.Error() != `status: must be firing or resolved, got "ok"` {
		t.Errorf("our format with a bad status: %v", err)
	}
}

func TestGroupKeyFunc(t *testing.T) {
	if GroupKeyFunc(oncall.Integration{Name: "pd", Kind: "pagerduty"}) != nil {
		t.Error("a group key function without a group key")
	}
	apply := GroupKeyFunc(oncall.Integration{Name: "pd", Kind: "pagerduty", GroupKey: `{{with .payload}}{{.source}}-{{.component}}{{end}}`})
	b := oncall.AlertBatch{GroupKey: "dedup:abc"}
	apply(&b, []byte(`{"routing_key": "r", "event_action": "trigger", "payload": {"summary": "s", "source": "db-1", "component": "postgres"}}`))
	if b.GroupKey != "tmpl:db-1-postgres" || b.Note != "" {
		t.Errorf("group key %q, note %q", b.GroupKey, b.Note)
	}
	b = oncall.AlertBatch{GroupKey: "dedup:abc", Note: "from the source"}
	apply(&b, []byte(`{"event_action": "acknowledge", "dedup_key": "abc"}`))
	if b.GroupKey != "dedup:abc" || b.Note != "from the source\ngroup_key: the template made an empty key; the alert is grouped as its kind does" {
		t.Errorf("empty key: group key %q, note %q", b.GroupKey, b.Note)
	}
}

func FuzzMappedWebhook(f *testing.F) {
	parse := ParserFor(oncall.Integration{Name: "fuzz", Kind: "webhook", GroupKey: `{{get . "group"}}`, Mapping: map[string]string{
		"title":     `{{.title | default .data.issue.title | upper}}`,
		"message":   `{{join ", " .list}} {{json .obj}}`,
		"dedup_key": `{{get . "data.issue.id"}}`,
		"severity":  `{{lower .level}}`,
		"status":    `{{index .statuses 0}}`,
		"link":      `{{.link}}`,
		"image":     `{{printf "%s" .image}}`,
	}}, "webhook")
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := parse(body, testNow)
		if err != nil {
			if _, ok := errors.AsType[*InputError](err); !ok {
				t.Fatalf("error %v is %T, want *InputError", err, err)
			}
			return
		}
		checkBatch(t, b)
		if !utf8.ValidString(b.Note) || strings.IndexByte(b.Note, 0) >= 0 {
			t.Fatalf("note not storable: %q", b.Note)
		}
		if b.Raw = storableJSON(body); b.Raw == nil {
			t.Fatalf("accepted body has no storable raw form: %q", body)
		}
		checkStorableJSON(t, b.Raw)
	})
}
