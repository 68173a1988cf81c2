package integrations

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// A drop-in for PagerDuty's Events API v2
// (https://developer.pagerduty.com/docs/events-api-v2/overview/): a tool
// configured for PagerDuty sends its events here by changing one URL, and
// an integration of kind pagerduty whose token is the routing_key receives
// them. Only /v2/enqueue is served: PagerDuty documents no other path for
// v2 events (change events, /v2/change/enqueue, are not alerts), and the
// v1 API is out of scope.

const pagerDutyKind = "pagerduty"

// PagerDuty's answers, as its Events API v2 reference words them.
const (
	pdSuccess           = "success"
	pdEventProcessed    = "Event processed"
	pdInvalidEvent      = "invalid event"
	pdEventInvalid      = "Event object is invalid"
	pdUnrecognized      = "Unrecognized object"
	pdUnrecognizedMsg   = "Event object format is unrecognized"
	pdJSONParseError    = "JSON parse error"
	pdInvalidRoutingKey = "Invalid routing key"
)

// maxPagerDutyErrors bounds the errors listed in one answer: a body of
// thousands of malformed links needs no answer of thousands of lines.
const maxPagerDutyErrors = 20

// PagerDutyEvent is an event of the Events API v2, parsed.
type PagerDutyEvent struct {
	// RoutingKey is the token of the integration the event is for.
	RoutingKey string
	// DedupKey is the event's dedup_key as sent, or the one generated for
	// a trigger without one; PagerDuty answers it back.
	DedupKey string
	// Batch is the event normalized; the handler completes it.
	Batch oncall.AlertBatch
	// Raw is the event without its routing_key (a secret), for the
	// record.
	Raw json.RawMessage
}

// PagerDutyError is why an event was refused, in the words of PagerDuty's
// 400 answer.
type PagerDutyError struct {
	Status  string
	Message string
	Errors  []string
}

func (e *PagerDutyError) Error() string {
	return e.Message + ": " + strings.Join(e.Errors, "; ")
}

// ParsePagerDuty parses an event of PagerDuty's Events API v2:
//
//   - routing_key: required (the handler looks the integration up).
//   - event_action trigger: payload.summary, payload.source and
//     payload.severity (critical, error, warning, info) are required. The
//     batch fires in group "pd:" + dedup_key (a random 32-hex-digit key
//     when absent) with one alert whose fingerprint is the dedup key.
//     Title is the summary (cut to our title length; PagerDuty allows 1024
//     characters). Labels are source, component, group, class and severity
//     (non-empty ones). Annotations hold custom_details, one per member of
//     an object (strings as they are, other values as JSON), or one
//     "custom_details" for anything else; Message shows them as "name:
//     value" lines followed by client and links. Link is client_url, else
//     the first link; ImageURL the first image. payload.timestamp (ISO
//     8601) is when the alert started, now when absent or unreadable.
//     URLs that are not absolute http(s) URLs are dropped, not refused:
//     the alert matters more.
//   - event_action acknowledge: dedup_key required; the batch acknowledges
//     the open incident of the group (oncall.ActionAcknowledge, no alerts).
//   - event_action resolve: dedup_key required; the batch resolves the
//     group, with the alert of the dedup key resolved.
//
// For acknowledge and resolve the trigger-only fields are ignored, as
// PagerDuty ignores them. A body that is not a JSON object is refused as
// PagerDuty refuses it ("Unrecognized object"); a malformed event is
// refused with every problem found (up to maxPagerDutyErrors) listed the
// way PagerDuty lists them ("'payload.source' is missing or blank"). The
// error is a *PagerDutyError.
func ParsePagerDuty(body []byte, now time.Time) (PagerDutyEvent, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return PagerDutyEvent{}, &PagerDutyError{Status: pdUnrecognized, Message: pdUnrecognizedMsg,
			Errors: []string{pdJSONParseError}}
	}
	var p pdParser
	ev := p.event(doc, now.UTC())
	if len(p.errs) > 0 {
		return PagerDutyEvent{}, &PagerDutyError{Status: pdInvalidEvent, Message: pdEventInvalid, Errors: p.errs}
	}
	members := maps.Clone(doc.members)
	delete(members, "routing_key")
	// Cannot fail: the values are valid JSON already. Without a record
	// the event still counts.
	ev.Raw, _ = json.Marshal(members)
	return ev, nil
}

// pdParser decodes an event, collecting every problem rather than
// stopping at the first, as PagerDuty lists them all.
type pdParser struct {
	errs []string
}

func (p *pdParser) fail(format string, args ...any) {
	if len(p.errs) < maxPagerDutyErrors {
		p.errs = append(p.errs, fmt.Sprintf(format, args...))
	}
}

// failInput records a malformed value (an *InputError of the document
// parser).
func (p *pdParser) failInput(err error) {
	if ie, ok := errors.AsType[*InputError](err); ok {
		p.fail("'%s' is invalid (%s)", ie.Path, ie.Msg)
		return
	}
	p.fail("%s", err.Error())
}

func (p *pdParser) missing(path string) { p.fail("'%s' is missing or blank", path) }

// str returns the string member key of o, "" when absent or malformed.
func (p *pdParser) str(o object, key string) string {
	s, err := o.str(key)
	if err != nil {
		p.failInput(err)
	}
	return s
}

// required returns the string member key of o as sent; it must not be
// blank once cleaned.
func (p *pdParser) required(o object, key string) string {
	s, err := o.str(key)
	if err != nil {
		p.failInput(err)
		return ""
	}
	if strings.TrimSpace(clean(s, len(s))) == "" {
		p.missing(o.at(key))
	}
	return s
}

// pdText cleans s, cuts it to maxRunes and trims it.
func pdText(s string, maxRunes int) string { return strings.TrimSpace(clean(s, maxRunes)) }

// event decodes the members every action has, then those of the action.
func (p *pdParser) event(doc object, now time.Time) PagerDutyEvent {
	ev := PagerDutyEvent{RoutingKey: p.required(doc, "routing_key")}
	action := p.required(doc, "event_action")
	dedupKey, err := doc.str("dedup_key")
	if err != nil {
		p.failInput(err)
	}
	ev.DedupKey = dedupKey
	fingerprint := boundedID(dedupKey)
	// A malformed key is reported as such, not also as missing.
	hasKey := err != nil || strings.TrimSpace(fingerprint) != ""

	switch strings.TrimSpace(action) {
	case "trigger":
		if !hasKey {
			ev.DedupKey = newDedupKey()
			fingerprint = ev.DedupKey
		}
		ev.Batch = p.trigger(doc, fingerprint, now)
	case "acknowledge":
		if !hasKey {
			p.missing("dedup_key")
		}
		ev.Batch = oncall.AlertBatch{GroupKey: "pd:" + fingerprint, Action: oncall.ActionAcknowledge,
			Status: oncall.AlertFiring, Title: "Acknowledged by the source", Severity: oncall.SeverityInfo,
			Alerts: []oncall.Alert{}}
	case "resolve":
		if !hasKey {
			p.missing("dedup_key")
		}
		const title = "Resolved by the source"
		ev.Batch = oncall.AlertBatch{GroupKey: "pd:" + fingerprint, Status: oncall.AlertResolved,
			Title: title, Severity: oncall.SeverityInfo,
			Alerts: []oncall.Alert{{Fingerprint: fingerprint, Status: oncall.AlertResolved, Title: title,
				Severity: oncall.SeverityInfo, EndsAt: now}}}
	case "": // reported by required
	default:
		p.fail("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	}
	return ev
}

// trigger decodes the fields of a trigger event into its batch.
func (p *pdParser) trigger(doc object, fingerprint string, now time.Time) oncall.AlertBatch {
	payload, ok, err := doc.obj("payload")
	if err != nil {
		p.failInput(err)
		return oncall.AlertBatch{}
	}
	if !ok {
		p.missing("payload")
		return oncall.AlertBatch{}
	}
	summary := pdText(p.required(payload, "summary"), maxTitleRunes)
	source := pdText(p.required(payload, "source"), maxLabelValueRunes)
	severity := p.severity(payload)
	labels := map[string]string{"source": source, "severity": string(severity)}
	for _, key := range []string{"component", "group", "class"} {
		labels[key] = pdText(p.str(payload, key), maxLabelValueRunes)
	}
	maps.DeleteFunc(labels, func(_, v string) bool { return v == "" })
	startsAt := p.timestamp(payload, now)
	client := pdText(p.str(doc, "client"), maxTitleRunes)
	clientURL := p.url(doc, "client_url")
	links := p.links(doc)
	imageURL := p.firstImage(doc)

	var annotations map[string]string
	var details string
	if raw, ok := payload.member("custom_details"); ok {
		annotations, details = pdCustomDetails(raw)
	}
	var linkLines []string
	if clientURL != "" {
		linkLines = append(linkLines, pdLabelled(client, clientURL))
	}
	for _, l := range links {
		linkLines = append(linkLines, pdLabelled(l.text, l.href))
	}
	message := details
	if len(linkLines) > 0 {
		if message != "" {
			message += "\n\n"
		}
		message += strings.Join(linkLines, "\n")
	}
	message = clean(message, maxMessageRunes)
	link := clientURL
	if link == "" && len(links) > 0 {
		link = links[0].href
	}

	return oneAlertBatch("pd:"+fingerprint, oncall.Alert{
		Fingerprint: fingerprint,
		Status:      oncall.AlertFiring,
		Title:       summary,
		Message:     message,
		Severity:    severity,
		Link:        link,
		ImageURL:    imageURL,
		Labels:      labels,
		Annotations: annotations,
		StartsAt:    startsAt,
	})
}

// severity returns payload.severity, one of PagerDuty's four, which are
// ours.
func (p *pdParser) severity(payload object) oncall.Severity {
	s, err := payload.str("severity")
	if err != nil {
		p.failInput(err)
		return ""
	}
	switch sev := oncall.Severity(strings.ToLower(strings.TrimSpace(s))); sev {
	case oncall.SeverityCritical, oncall.SeverityError, oncall.SeverityWarning, oncall.SeverityInfo:
		return sev
	case "":
		p.missing(payload.at("severity"))
	default:
		p.fail("'%s' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')",
			payload.at("severity"))
	}
	return ""
}

// pdTimeLayouts are the ISO 8601 forms tools send: RFC 3339, and
// PagerDuty's own example, "2015-07-17T08:42:58.315+0000". A time
// without a zone is taken as UTC.
var pdTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
}

// timestamp returns payload.timestamp in UTC, now when it is absent or
// unreadable: a sender's clock format is no reason to lose its alert.
func (p *pdParser) timestamp(payload object, now time.Time) time.Time {
	s := strings.TrimSpace(p.str(payload, "timestamp"))
	for _, layout := range pdTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t = t.UTC(); t.Year() > 1 && t.Year() <= 9999 {
				return t
			}
		}
	}
	return now
}

// url returns the string member key of o if it is an absolute http(s)
// URL, else "".
func (p *pdParser) url(o object, key string) string {
	s := p.str(o, key)
	if s == "" || checkURL(s) != "" {
		return ""
	}
	return clean(s, maxURLBytes)
}

type pdLink struct {
	href, text string
}

// links returns the usable entries of links[].
func (p *pdParser) links(doc object) []pdLink {
	var links []pdLink
	p.each(doc, "links", func(o object) {
		l := pdLink{href: p.url(o, "href"), text: pdText(p.str(o, "text"), maxTitleRunes)}
		if l.href != "" {
			links = append(links, l)
		}
	})
	return links
}

// firstImage returns the src of the first usable entry of images[].
func (p *pdParser) firstImage(doc object) string {
	var first string
	p.each(doc, "images", func(o object) {
		src := p.url(o, "src")
		// href and alt are only checked: the image is all we show.
		p.str(o, "href")
		p.str(o, "alt")
		if first == "" {
			first = src
		}
	})
	return first
}

// each calls f with every element of the array member key of doc, each of
// which must be an object.
func (p *pdParser) each(doc object, key string, f func(object)) {
	elems, _, err := doc.arr(key)
	if err != nil {
		p.failInput(err)
		return
	}
	for i, raw := range elems {
		o, err := parseObject(indexPath(doc.at(key), i), raw)
		if err != nil {
			p.failInput(err)
			continue
		}
		f(o)
	}
}

// pdCustomDetails renders payload.custom_details, any JSON value, as
// annotations and as "name: value" lines (empty values left out). Members
// past maxMapEntries, in name order, are left to the raw event.
func pdCustomDetails(raw json.RawMessage) (map[string]string, string) {
	var members map[string]json.RawMessage
	if jsonKind(raw) != "object" || json.Unmarshal(raw, &members) != nil {
		v := clean(pdJSONText(raw), maxMessageRunes)
		if strings.TrimSpace(v) == "" {
			return nil, ""
		}
		return map[string]string{"custom_details": v}, v
	}
	annotations := make(map[string]string, min(len(members), maxMapEntries))
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(members)) {
		key := pdText(k, maxKeyBytes)
		if key == "" || len(annotations) == maxMapEntries {
			continue
		}
		v := clean(pdJSONText(members[k]), maxMessageRunes)
		annotations[key] = v
		if line := strings.TrimSpace(v); line != "" {
			lines = append(lines, key+": "+line)
		}
	}
	if len(annotations) == 0 {
		return nil, ""
	}
	return annotations, strings.Join(lines, "\n")
}

// pdJSONText is a valid JSON value as text: a string as itself, anything
// else as compact JSON, null as "".
func pdJSONText(raw json.RawMessage) string {
	switch jsonKind(raw) {
	case "null":
		return ""
	case "string":
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// pdLabelled is "label: url", or url alone without a label.
func pdLabelled(label, url string) string {
	if label == "" {
		return url
	}
	return label + ": " + url
}

// newDedupKey returns a random 32-hex-digit dedup key, as PagerDuty
// generates for a trigger without one.
func newDedupKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read crashes the program instead)
	return hex.EncodeToString(b[:])
}

// registerPagerDuty serves PagerDuty's Events API v2 endpoint.
func (h *Handler) registerPagerDuty(mux *http.ServeMux) {
	mux.HandleFunc("/v2/enqueue", h.servePagerDuty)
	mux.HandleFunc("/v2/enqueue/{$}", h.servePagerDuty)
}

func (h *Handler) servePagerDuty(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.enqueuePagerDuty(w, r)
	h.metrics.requests.WithLabelValues(pagerDutyKind, strconv.Itoa(code)).Inc()
	h.metrics.duration.WithLabelValues(pagerDutyKind).Observe(time.Since(start).Seconds())
}

// pdResponse is the body of every answer of PagerDuty's Events API v2.
type pdResponse struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// enqueuePagerDuty answers one event and returns the status code it sent:
// 202 once its batch is queued, 4xx and 5xx as PagerDuty answers them.
func (h *Handler) enqueuePagerDuty(w http.ResponseWriter, r *http.Request) int {
	reqLog := func() *slog.Logger { return h.log.With("kind", pagerDutyKind, "remote", r.RemoteAddr) }
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeJSON(w, http.StatusMethodNotAllowed, pdResponse{Status: "method not allowed",
			Message: "Method not allowed, use POST"})
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes), r.ContentLength)
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			// PagerDuty caps an event at 512 KB without documenting the
			// answer; ours is the limit of every endpoint, in its shape.
			reqLog().Info("ingest rejected: body too large")
			return writeJSON(w, http.StatusRequestEntityTooLarge, pdResponse{Status: pdInvalidEvent,
				Message: pdEventInvalid, Errors: []string{fmt.Sprintf("Event is larger than %d bytes", MaxBodyBytes)}})
		}
		reqLog().Info("ingest rejected: read body", "err", err)
		return writeJSON(w, http.StatusBadRequest, pdResponse{Status: "bad request", Message: "read body: " + err.Error()})
	}
	now := time.Now().UTC()
	ev, err := ParsePagerDuty(body, now)
	if err != nil {
		reqLog().Info("ingest rejected: bad event", "err", err)
		pe, ok := errors.AsType[*PagerDutyError](err)
		if !ok {
			return writeJSON(w, http.StatusBadRequest, pdResponse{Status: pdInvalidEvent, Message: err.Error()})
		}
		return writeJSON(w, http.StatusBadRequest, pdResponse{Status: pe.Status, Message: pe.Message, Errors: pe.Errors})
	}
	in, ok := h.Integration(pagerDutyKind, ev.RoutingKey)
	if !ok {
		reqLog().Info("ingest rejected: unknown or disabled routing key")
		return writeInvalidRoutingKey(w)
	}
	if _, err := h.Accept(r.Context(), in, pagerDutyKind, ev.Batch, ev.Raw, now); err != nil {
		return writePagerDutyAcceptError(w, err)
	}
	return writeJSON(w, http.StatusAccepted, pdResponse{Status: pdSuccess, Message: pdEventProcessed, DedupKey: ev.DedupKey})
}

// writeInvalidRoutingKey answers an event whose routing_key is no
// integration's: 400, PagerDuty's status and text ("Invalid routing key",
// which senders log verbatim, e.g.
// https://github.com/robusta-dev/robusta/issues/571) in the JSON shape of
// its other refusals, so that clients parsing JSON can read it too.
func writeInvalidRoutingKey(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusBadRequest, pdResponse{Status: pdInvalidEvent, Message: pdInvalidRoutingKey,
		Errors: []string{pdInvalidRoutingKey}})
}

// writePagerDutyAcceptError answers err (an *AcceptError, else 500) in the
// shape of PagerDuty's error answers: status a short name of the error,
// message what went wrong, and Retry-After for 429 and 503, which
// PagerDuty's senders retry.
func writePagerDutyAcceptError(w http.ResponseWriter, err error) int {
	ae, ok := errors.AsType[*AcceptError](err)
	if !ok {
		ae = &AcceptError{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	if ae.RetryAfter > 0 {
		setRetryAfter(w, ae.RetryAfter)
	}
	return writeJSON(w, ae.Status, pdResponse{Status: strings.ToLower(http.StatusText(ae.Status)), Message: ae.Message})
}
