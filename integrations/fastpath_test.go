package integrations

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// webhookPathInputs are bodies on which the typed fast path of
// ParseWebhook must agree with the document parser: the golden inputs,
// the bad inputs and the shapes the fast path must leave to the document
// parser.
func webhookPathInputs(t testing.TB) map[string][]byte {
	t.Helper()
	inputs := map[string][]byte{}
	golden, err := filepath.Glob(filepath.Join("testdata", "webhook", "*.json"))
	if err != nil || len(golden) == 0 {
		t.Fatalf("golden webhook inputs: %v", err)
	}
	for _, in := range golden {
		body, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		inputs["golden/"+filepath.Base(in)] = body
	}
	for _, tc := range badInputs {
		if tc.kind == "webhook" {
			inputs["bad/"+tc.name] = []byte(tc.body)
		}
	}
	for _, u := range unusualWebhookBodies {
		inputs["unusual/"+u.name] = []byte(u.body)
	}
	return inputs
}

// unusualWebhookBodies are bodies on which json.Unmarshal into a struct
// and the document parser differ unless the fast path steps aside, and
// plain ones that look tricky to a scanner; fast tells whether the fast
// path answers.
var unusualWebhookBodies = []struct {
	name, body string
	fast       bool
}{
	{"member name in another case", `{"Title": "t"}`, false},
	{"both cases", `{"title": "a", "TITLE": "b"}`, false},
	{"other case after the exact name", `{"TITLE": "b", "title": "a"}`, false},
	{"long s folds to s", `{"title": "t", "ſeverity": "bad"}`, false},
	{"Kelvin sign folds to k", `{"title": "t", "lin\u212a": "nope"}`, false},
	{"escaped member name", `{"titl\u0065": "t"}`, false},
	{"escaped unknown member", `{"title": "t", "x\"y": 1}`, false},
	{"repeated title", `{"title": "a", "title": "b"}`, false},
	{"repeated title, then null", `{"title": "a", "title": null}`, false},
	{"repeated labels", `{"title": "t", "labels": {"a": "1"}, "labels": {"b": "2"}}`, false},
	{"null label value", `{"title": "t", "labels": {"a": null}}`, false},
	{"null label value repeated", `{"title": "t", "labels": {"a": "x", "a": null}}`, false},
	{"label value then null", `{"title": "t", "labels": {"a": null, "a": "x"}}`, false},
	{"nested member names", `{"title": "t", "x": {"Title": "u", "title": "v"}, "y": [{"TITLE": 1}]}`, true},
	{"strings with brackets and escapes", `{"title": "a{b}[c],\"d\\", "message": "{\"title\": 1}"}`, true},
	{"labels with escaped keys", `{"title": "t", "labels": {"a\u0062": "1", "ab": "2"}}`, true},
	{"whitespace around everything", " \n\t{ \"title\" : \"t\" , \"labels\" : { \"a\" : \"b\" } } \r\n", true},
	{"number title", `{"title": 1e3}`, false},
	{"empty labels", `{"title": "t", "labels": {}}`, true},
	{"null body members", `{"title": "t", "message": null, "labels": null}`, true},
	{"top-level null", `null`, false},
	{"nested null title", `{"title": {"title": "t"}}`, false},
	{"uppercase severity value", `{"title": "t", "severity": "CRITICAL", "status": " Resolved "}`, true},
}

// TestWebhookFastPathMatchesDocumentParser checks that ParseWebhook gives
// exactly what the document parser gives, batch or error, on every golden
// input, every bad input and the unusual shapes; and that the fast path
// does serve the plain golden inputs.
func TestWebhookFastPathMatchesDocumentParser(t *testing.T) {
	for name, body := range webhookPathInputs(t) {
		t.Run(name, func(t *testing.T) {
			compareWebhookPaths(t, body)
		})
	}
	for _, plain := range []string{"firing_full.json", "firing_minimal.json", "resolved_dedup_key.json", "synonyms_nulls_unknown_fields.json"} {
		body, err := os.ReadFile(filepath.Join("testdata", "webhook", plain))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := parseWebhookFast(body, testNow); !ok {
			t.Errorf("%s did not take the fast path", plain)
		}
	}
	for _, u := range unusualWebhookBodies {
		if _, ok := parseWebhookFast([]byte(u.body), testNow); ok != u.fast {
			t.Errorf("%s: fast path answered %v, want %v", u.name, ok, u.fast)
		}
	}
}

// compareWebhookPaths fails t unless ParseWebhook and the document parser
// agree on body, and the fast path, when it answers, agrees too.
func compareWebhookPaths(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := parseWebhookDocument(body, testNow)
	got, err := ParseWebhook(body, testNow)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("ParseWebhook(%q) error %v, document parser %v", body, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseWebhook(%q)\n got %+v\nwant %+v", body, got, want)
	}
	if fast, ok := parseWebhookFast(body, testNow); ok {
		if wantErr != nil {
			t.Fatalf("fast path accepted %q, document parser: %v", body, wantErr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("fast path on %q\n got %+v\nwant %+v", body, fast, want)
		}
	}
}

// FuzzWebhookFastPath checks on any body that the fast path and the
// document parser agree.
func FuzzWebhookFastPath(f *testing.F) {
	for _, body := range webhookPathInputs(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) { compareWebhookPaths(t, body) })
}

func TestWebhookMembersMatchStruct(t *testing.T) {
	typ := reflect.TypeFor[webhookJSON]()
	if typ.NumField() != len(webhookMembers) {
		t.Fatalf("webhookJSON has %d fields, webhookMembers %d names", typ.NumField(), len(webhookMembers))
	}
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("json"); tag != string(webhookMembers[i]) {
			t.Errorf("field %d: json name %q, webhookMembers has %q", i, tag, webhookMembers[i])
		}
		// Maps store null values as "": the document parser must judge them.
		isMap := typ.Field(i).Type.Kind() == reflect.Map
		if noNulls := webhookNoNestedNull&(1<<i) != 0; noNulls != isMap {
			t.Errorf("field %s: in webhookNoNestedNull %v, want %v", typ.Field(i).Name, noNulls, isMap)
		}
	}
}

// ParseWebhook (the fast path) against the document parser on a full
// webhook:
//
//	go test -run '^$' -bench ParseWebhook -benchmem ./integrations
func BenchmarkParseWebhook(b *testing.B) {
	benchParse(b, ParseWebhook)
}

func BenchmarkParseWebhookDocument(b *testing.B) {
	benchParse(b, parseWebhookDocument)
}

func benchParse(b *testing.B, parse Parser) {
	body, err := os.ReadFile(filepath.Join("testdata", "webhook", "firing_full.json"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := parse(body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
