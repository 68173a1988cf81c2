package integrations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/oncallbot/oncall"
)

// This file holds what lets the webhook kind take any JSON: the fields it
// finds by default in a body not in our documented format, the mapping of
// an integration (text/templates of the payload for each field), and the
// group key template any integration may have.

// Fields of a mapping, as written in the config.
const (
	mapTitle        = "title"
	mapMessage      = "message"
	mapDedupKey     = "dedup_key"
	mapSeverity     = "severity"
	mapStatus       = "status"
	mapResolvedWhen = "resolved_when"
	mapLink         = "link"
	mapImage        = "image"
)

// MappingFields returns the fields a webhook integration's mapping may
// set, in the order they are evaluated and documented.
func MappingFields() []string {
	return []string{mapTitle, mapMessage, mapDedupKey, mapSeverity, mapStatus, mapResolvedWhen, mapLink, mapImage}
}

// The members looked for in a JSON object that is not in our documented
// format, the first one with a value winning: what common tools call them.
var (
	defaultTitleKeys    = []string{"title", "summary", "name", "alertname", "subject", "message"}
	defaultMessageKeys  = []string{"message", "description", "details", "text"}
	defaultStatusKeys   = []string{"status", "state"}
	defaultDedupKeys    = []string{"dedup_key", "incident_key", "alert_uid", "fingerprint", "id"}
	defaultSeverityKeys = []string{"severity", "priority", "level"}
	defaultLinkKeys     = []string{"link", "url", "href"}
	defaultImageKeys    = []string{"image_url", "image"}
)

// resolvedWords are the statuses that mean resolved; any other is firing.
var resolvedWords = []string{"resolved", "ok", "closed", "inactive", "normal"}

// maxRenderBytes bounds what one template may write: a template ranging
// over a large payload must not exhaust memory.
const maxRenderBytes = 64 << 10

// textFunc is the helper every printing action of a template ends with
// (see printAsText).
const textFunc = "text"

// CompileTemplate parses text, the template of a mapping field or of a
// group key named name in errors ("title", "group_key"), with the helpers
// templates may use:
//
//	default D V   V, or D when V is missing, null, "" or an empty list or object
//	lower V       V as text, in lower case
//	upper V       V as text, in upper case
//	join SEP V    the elements of the list V as text, separated by SEP
//	json V        V encoded as JSON
//	get V PATH    the member at the dotted PATH of V ("data.issue.id",
//	              "alerts.0.labels"), missing (empty) when any part is
//	text V        V as text: "" when missing, objects and lists as JSON
//
// Every {{...}} that prints goes through text, so a missing member prints
// as "" (not "<no value>"); a path through a missing member is missing
// too. The template is evaluated against the JSON payload decoded with
// numbers kept as written and null members removed.
func CompileTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(templateFuncs()).Parse(text)
	if err != nil {
		return nil, err
	}
	printAsText(t)
	return t, nil
}

func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"default": func(def, v any) any {
			if isEmptyValue(v) {
				return def
			}
			return v
		},
		"lower": func(v any) string { return strings.ToLower(valueText(v)) },
		"upper": func(v any) string { return strings.ToUpper(valueText(v)) },
		"join":  joinValues,
		"json": func(v any) (string, error) {
			data, err := json.Marshal(v)
			return string(data), err
		},
		"get":    getPath,
		textFunc: valueText,
	}
}

// printAsText appends "| text" to every action of t that prints: the
// template package prints a missing value as "<no value>", and no option
// changes that (missingkey=zero makes a path through a missing member an
// error instead).
func printAsText(t *template.Template) {
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			printNodesAsText(tt.Tree.Root)
		}
	}
}

func printNodesAsText(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			printNodesAsText(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 { // {{$x := ...}} prints nothing
			return
		}
		ident := parse.NewIdentifier(textFunc).SetPos(n.Pos)
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{ident}})
	case *parse.IfNode:
		printNodesAsText(n.List)
		printNodesAsText(n.ElseList)
	case *parse.RangeNode:
		printNodesAsText(n.List)
		printNodesAsText(n.ElseList)
	case *parse.WithNode:
		printNodesAsText(n.List)
		printNodesAsText(n.ElseList)
	}
}

// valueText is a decoded JSON value as text: "" for missing or null,
// numbers as written, objects and lists as JSON.
func valueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case map[string]any, []any:
		if data, err := json.Marshal(v); err == nil {
			return string(data)
		}
	}
	return fmt.Sprint(v)
}

func isEmptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// joinValues joins the elements of a list as text; anything else is
// returned as text.
func joinValues(sep string, v any) string {
	var elems []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			elems = append(elems, valueText(e))
		}
	case []string:
		elems = v
	default:
		return valueText(v)
	}
	return strings.Join(elems, sep)
}

// getPath returns the member of v at the dotted path, nil when any part
// is missing. A part indexes a list when it is a number.
func getPath(v any, path string) any {
	if path == "" {
		return v
	}
	for part := range strings.SplitSeq(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// errRenderTooLong stops a template that writes more than maxRenderBytes.
var errRenderTooLong = fmt.Errorf("output longer than %d bytes", maxRenderBytes)

// renderBuffer is a buffer that refuses to grow beyond maxRenderBytes.
type renderBuffer struct{ bytes.Buffer }

func (b *renderBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRenderBytes {
		return 0, errRenderTooLong
	}
	return b.Buffer.Write(p)
}

// render executes t against payload and returns its output without
// leading and trailing space (YAML block scalars end templates with a
// newline).
func render(t *template.Template, payload map[string]any) (string, error) {
	var out renderBuffer
	if err := t.Execute(&out, payload); err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

// decodePayload decodes body, which must be one JSON object, for
// templates and default fields: numbers are kept as written (json.Number)
// and null members are removed, so that a null reads as missing.
func decodePayload(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var payload map[string]any
	err := dec.Decode(&payload)
	if err == nil {
		if _, tokErr := dec.Token(); !errors.Is(tokErr, io.EOF) {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil || payload == nil {
		// The document parser names what is wrong as every parser does.
		if _, docErr := parseDocument(body); docErr != nil {
			return nil, docErr
		}
		return nil, inputErrorf("", "malformed JSON: %v", err)
	}
	removeNulls(payload)
	return payload, nil
}

func removeNulls(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
			} else {
				removeNulls(e)
			}
		}
	case []any:
		for _, e := range v {
			removeNulls(e)
		}
	}
}

// webhookAlert is what a webhook body says about its alert, as found by
// default or by a mapping, before batch normalizes it.
type webhookAlert struct {
	title, message, dedupKey, severity string
	resolved                           bool
	link, image                        string // absolute http(s) URLs or ""
	labels                             map[string]string
}

// defaultAlert finds the fields of an alert in a JSON object in another
// format than ours: the first member of each list of default keys that
// holds a value (text, number or boolean), its name matched exactly or,
// failing that, in any case.
func defaultAlert(payload map[string]any) webhookAlert {
	title, titleKey := findText(payload, defaultTitleKeys)
	// A title read from "message" is not repeated as the message.
	message, _ := findText(payload, slices.DeleteFunc(slices.Clone(defaultMessageKeys), func(k string) bool { return k == titleKey }))
	status, _ := findText(payload, defaultStatusKeys)
	dedupKey, _ := findText(payload, defaultDedupKeys)
	severity, _ := findText(payload, defaultSeverityKeys)
	return webhookAlert{
		title:    title,
		message:  message,
		dedupKey: dedupKey,
		severity: severity,
		resolved: isResolvedWord(status),
		link:     findURL(payload, defaultLinkKeys),
		image:    findURL(payload, defaultImageKeys),
		labels:   payloadLabels(payload),
	}
}

// findText returns the first of keys whose member is a non-blank text,
// number or boolean, and that key.
func findText(payload map[string]any, keys []string) (value, key string) {
	for _, k := range keys {
		switch v := lookupMember(payload, k).(type) {
		case string, json.Number, bool:
			if s := valueText(v); strings.TrimSpace(s) != "" {
				return s, k
			}
		}
	}
	return "", ""
}

// findURL returns the first of keys whose member is an absolute http(s)
// URL.
func findURL(payload map[string]any, keys []string) string {
	for _, k := range keys {
		if s, ok := lookupMember(payload, k).(string); ok && checkURL(s) == "" {
			return s
		}
	}
	return ""
}

// payloadLabels returns the members of the object "labels" whose values
// are text, numbers or booleans, as text, for routes; other members are
// left out, as are keys that are blank or too long, and those beyond
// maxMapEntries in key order. Nil when there are none.
func payloadLabels(payload map[string]any) map[string]string {
	obj, ok := lookupMember(payload, "labels").(map[string]any)
	if !ok {
		return nil
	}
	var labels map[string]string
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if len(labels) == maxMapEntries {
			break
		}
		switch v := obj[k].(type) {
		case string, json.Number, bool:
			key := clean(k, maxKeyBytes)
			if len(k) > maxKeyBytes || strings.TrimSpace(key) == "" {
				continue
			}
			if labels == nil {
				labels = make(map[string]string)
			}
			labels[key] = clean(valueText(v), maxLabelValueRunes)
		}
	}
	return labels
}

// lookupMember returns the member key of payload or, without one, the
// member whose name equals key but for case ("Title", "STATUS"); the
// first in byte order if there are several. Nil if none.
func lookupMember(payload map[string]any, key string) any {
	if v, ok := payload[key]; ok {
		return v
	}
	name := ""
	for k := range payload {
		if strings.EqualFold(k, key) && (name == "" || k < name) {
			name = k
		}
	}
	if name == "" {
		return nil
	}
	return payload[name]
}

func isResolvedWord(s string) bool {
	return slices.Contains(resolvedWords, strings.ToLower(strings.TrimSpace(s)))
}

// batch normalizes the alert as buildWebhook does our format: the group
// key is "dedup:" + the dedup key, or "title:" + the title without one.
// An alert without a title is titled "Alert from <source>", source being
// the integration's name.
func (a webhookAlert) batch(now time.Time, source string) oncall.AlertBatch {
	title := strings.TrimSpace(clean(a.title, maxTitleRunes))
	titleKey := strings.TrimSpace(a.title)
	if title == "" {
		title = clean("Alert from "+source, maxTitleRunes)
		titleKey = title
	}
	severity, ok := oncall.ParseSeverity(a.severity)
	if !ok {
		severity = oncall.SeverityWarning
	}
	status := oncall.AlertFiring
	if a.resolved {
		status = oncall.AlertResolved
	}
	return singleAlert(a.dedupKey, titleKey, oncall.Alert{
		Status: status, Title: title, Message: clean(a.message, maxMessageRunes), Severity: severity,
		Link: clean(a.link, maxURLBytes), ImageURL: clean(a.image, maxURLBytes), Labels: a.labels,
	}, now)
}

// integrationTemplates are the compiled templates of one integration.
type integrationTemplates struct {
	name     string                        // the integration's
	mapping  map[string]*template.Template // by field; nil without a mapping
	groupKey *template.Template            // nil without one
	// broken notes templates that do not compile, which config.Parse
	// rejects; possible only for integrations built otherwise. Each is a
	// note on every batch, and its field is left to the default.
	broken []string
}

func compileTemplates(in oncall.Integration) *integrationTemplates {
	t := &integrationTemplates{name: in.Name}
	for _, field := range MappingFields() {
		text, ok := in.Mapping[field]
		if !ok || strings.TrimSpace(text) == "" {
			continue
		}
		tmpl, err := CompileTemplate(field, text)
		if err != nil {
			t.broken = append(t.broken, "mapping: "+field+": "+err.Error())
			continue
		}
		if t.mapping == nil {
			t.mapping = make(map[string]*template.Template)
		}
		t.mapping[field] = tmpl
	}
	if strings.TrimSpace(in.GroupKey) != "" {
		tmpl, err := CompileTemplate("group_key", in.GroupKey)
		if err != nil {
			t.broken = append(t.broken, "group_key: "+err.Error())
		} else {
			t.groupKey = tmpl
		}
	}
	return t
}

// ParserFor returns the parser of integration in, of kind: the kind's
// builtin parser, extended with the integration's templates. A webhook
// integration with a mapping takes any JSON object and maps its fields
// (see mapWebhook); one without takes our documented format or finds the
// usual fields of other JSON, an alert without a title then titled after
// the integration. With a group key template, the group key of every
// batch is "tmpl:" and what the template makes of the payload (see
// applyGroupKey). It returns nil for a kind without a builtin parser.
//
// ParserFor compiles the templates: call it once per integration, not per
// request. A template that fails, to compile or on a payload, never drops
// an alert: its field takes the default and the batch a Note saying why.
func ParserFor(in oncall.Integration, kind string) Parser {
	builtin, ok := builtinParsers()[kind]
	if !ok {
		return nil
	}
	if kind == "webhook" {
		return compileTemplates(in).parseWebhook
	}
	// Only webhooks have a mapping (config.Parse sees to it).
	t := compileTemplates(oncall.Integration{Name: in.Name, GroupKey: in.GroupKey})
	if t.groupKey == nil && len(t.broken) == 0 {
		return builtin
	}
	return func(body []byte, now time.Time) (oncall.AlertBatch, error) {
		b, err := builtin(body, now)
		if err != nil {
			return b, err
		}
		t.finish(&b, body, nil)
		return b, nil
	}
}

// GroupKeyFunc returns what applies the group key template of in to a
// batch that an endpoint of its own (PagerDuty's, Opsgenie's, SNS's)
// parsed from body, nil when in has none. Parsers from ParserFor apply it
// already.
func GroupKeyFunc(in oncall.Integration) func(b *oncall.AlertBatch, body []byte) {
	if strings.TrimSpace(in.GroupKey) == "" {
		return nil
	}
	t := compileTemplates(oncall.Integration{Name: in.Name, GroupKey: in.GroupKey})
	return func(b *oncall.AlertBatch, body []byte) { t.finish(b, body, nil) }
}

// parseWebhook parses a request to a webhook integration.
func (t *integrationTemplates) parseWebhook(body []byte, now time.Time) (oncall.AlertBatch, error) {
	if t.mapping == nil {
		b, payload, err := parseWebhook(body, now, t.name)
		if err != nil {
			return b, err
		}
		t.finish(&b, body, payload)
		return b, nil
	}
	payload, err := decodePayload(body)
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	b, notes := t.mapWebhook(payload, now)
	addNotes(&b, notes)
	t.finish(&b, body, payload)
	return b, nil
}

// mapWebhook makes the alert of a payload with the integration's mapping:
// each field mapped takes what its template makes of the payload, a field
// not mapped, or whose template makes nothing, takes the default
// (defaultAlert), and so does a field whose template fails, with a note
// saying why. The severity is what oncall.ParseSeverity makes of its text,
// warning if nothing; the status is resolved when resolved_when makes
// "true", or else when status makes one of resolvedWords; link and image
// are kept only if they are absolute http(s) URLs.
func (t *integrationTemplates) mapWebhook(payload map[string]any, now time.Time) (oncall.AlertBatch, []string) {
	a := defaultAlert(payload)
	var notes []string
	// apply sets *dst to what field's template makes, if it makes
	// something acceptable.
	apply := func(field string, dst *string, accept func(string) bool) {
		tmpl := t.mapping[field]
		if tmpl == nil {
			return
		}
		s, err := render(tmpl, payload)
		switch {
		case err != nil:
			notes = append(notes, "mapping: "+field+": "+err.Error())
		case s != "" && accept(s):
			*dst = s
		}
	}
	always := func(string) bool { return true }
	isURL := func(s string) bool { return checkURL(s) == "" }
	apply(mapTitle, &a.title, always)
	apply(mapMessage, &a.message, always)
	apply(mapDedupKey, &a.dedupKey, always)
	apply(mapSeverity, &a.severity, always)
	var status string
	apply(mapStatus, &status, always)
	if status != "" {
		a.resolved = isResolvedWord(status)
	}
	// resolved_when is a condition: empty is false, not a reason for the
	// default.
	if tmpl := t.mapping[mapResolvedWhen]; tmpl != nil {
		s, err := render(tmpl, payload)
		if err != nil {
			notes = append(notes, "mapping: "+mapResolvedWhen+": "+err.Error())
		} else {
			a.resolved = strings.EqualFold(s, "true")
		}
	}
	apply(mapLink, &a.link, isURL)
	apply(mapImage, &a.image, isURL)
	return a.batch(now, t.name), notes
}

// finish adds the notes of broken templates to b and applies the group
// key template. payload is body decoded by decodePayload, or nil if it
// has not been.
func (t *integrationTemplates) finish(b *oncall.AlertBatch, body []byte, payload map[string]any) {
	addNotes(b, t.broken)
	if t.groupKey != nil {
		t.applyGroupKey(b, body, payload)
	}
}

// applyGroupKey sets the group key of b to "tmpl:" and what the group key
// template makes of the payload. If it makes nothing or fails, b keeps the
// kind's group key, with a note saying why.
func (t *integrationTemplates) applyGroupKey(b *oncall.AlertBatch, body []byte, payload map[string]any) {
	if payload == nil {
		var err error
		if payload, err = decodePayload(body); err != nil {
			addNotes(b, []string{"group_key: payload is not a JSON object (" + err.Error() + "); the alert is grouped as its kind does"})
			return
		}
	}
	key, err := render(t.groupKey, payload)
	switch {
	case err != nil:
		addNotes(b, []string{"group_key: " + err.Error() + "; the alert is grouped as its kind does"})
	case key == "":
		addNotes(b, []string{"group_key: the template made an empty key; the alert is grouped as its kind does"})
	default:
		b.GroupKey = "tmpl:" + boundedID(key)
	}
}

// addNotes appends notes to b.Note, one a line, made safe to store.
func addNotes(b *oncall.AlertBatch, notes []string) {
	for _, n := range notes {
		n = clean(n, maxMessageRunes)
		if b.Note == "" {
			b.Note = n
		} else {
			b.Note = clean(b.Note+"\n"+n, maxMessageRunes)
		}
	}
}
