package integrations

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// ParseWebhook parses our own webhook format (kind "webhook", documented in
// docs/webhook.md), a JSON object:
//
//	title      string, required, non-empty
//	message    string
//	status     "firing" (the default) or "resolved"
//	dedup_key  string; batches with the same key form one incident
//	severity   critical, error, warning (the default) or info, or a synonym
//	           oncall.ParseSeverity knows
//	link       absolute http(s) URL
//	image_url  absolute http(s) URL
//	labels     object of string values, used by routes
//
// Unknown fields are ignored. The group key is "dedup:" + dedup_key, or,
// without a dedup_key, "title:" + the title (trimmed), so that repeats of the
// same title join one incident and a "resolved" with that title resolves it.
// The batch holds one alert whose fingerprint is the dedup key (or the
// title). The alert starts at now when firing and ends at now when resolved.
//
// A JSON object without a title member (or a null one) is another tool's
// JSON: its fields are found among the members common tools use (see
// defaultAlert), leniently, and it is titled "Alert from webhook" if none
// holds a title. A body with a title is held to our format.
func ParseWebhook(body []byte, now time.Time) (oncall.AlertBatch, error) {
	b, _, err := parseWebhook(body, now, "webhook")
	return b, err
}

// parseWebhook is ParseWebhook for the integration named source, after
// which an alert without a title is named. It also returns the payload of
// a body in another format, as decodePayload decodes it; nil for ours.
func parseWebhook(body []byte, now time.Time, source string) (oncall.AlertBatch, map[string]any, error) {
	// Almost every body is a plain object of the documented members: decode
	// it in one pass. Anything else, or any problem, goes through the
	// document parser, which names the path at fault.
	if b, ok := parseWebhookFast(body, now); ok {
		return b, nil, nil
	}
	return parseWebhookSlow(body, now, source)
}

// parseWebhookFast is ParseWebhook's typed fast path. It reports false
// unless it is sure to return what parseWebhookDocument would: for bodies
// it cannot decode in one pass, and for every invalid one.
func parseWebhookFast(body []byte, now time.Time) (oncall.AlertBatch, bool) {
	fields, ok := decodeWebhookFast(body)
	if !ok {
		return oncall.AlertBatch{}, false
	}
	b, err := buildWebhook(fields, now)
	return b, err == nil
}

// parseWebhookDocument is ParseWebhook through the document parser, whose
// errors name the path at fault.
func parseWebhookDocument(body []byte, now time.Time) (oncall.AlertBatch, error) {
	b, _, err := parseWebhookSlow(body, now, "webhook")
	return b, err
}

// parseWebhookSlow is parseWebhook through the document parser.
func parseWebhookSlow(body []byte, now time.Time, source string) (oncall.AlertBatch, map[string]any, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return oncall.AlertBatch{}, nil, err
	}
	if _, ours := doc.member("title"); ours {
		b, err := buildWebhook(doc, now)
		return b, nil, err
	}
	payload, err := decodePayload(body)
	if err != nil {
		return oncall.AlertBatch{}, nil, err
	}
	return defaultAlert(payload).batch(now, source), payload, nil
}

// webhookFields are the members of a webhook body, decoded by the document
// parser (object) or by the typed fast path (webhookJSON).
type webhookFields interface {
	// str returns the string member key, "" when absent or null.
	str(key string) (string, error)
	// stringMap returns the object member key of string values,
	// sanitized; nil when absent, null or empty.
	stringMap(key string, maxValue int) (map[string]string, error)
	// at is the path of the member key.
	at(key string) string
}

// buildWebhook validates and normalizes the members of a webhook body.
func buildWebhook(doc webhookFields, now time.Time) (oncall.AlertBatch, error) {
	rawTitle, err := doc.str("title")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	title := strings.TrimSpace(clean(rawTitle, maxTitleRunes))
	if title == "" {
		return oncall.AlertBatch{}, inputErrorf("title", "required")
	}
	message, err := doc.str("message")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	statusText, err := doc.str("status")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	status := oncall.AlertFiring
	if statusText != "" {
		if status, err = parseStatus("status", statusText); err != nil {
			return oncall.AlertBatch{}, err
		}
	}
	dedupKey, err := doc.str("dedup_key")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	severityText, err := doc.str("severity")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	severity := oncall.SeverityWarning
	if strings.TrimSpace(severityText) != "" {
		s, ok := oncall.ParseSeverity(severityText)
		if !ok {
			return oncall.AlertBatch{}, inputErrorf("severity", "unknown severity %s (want critical, error, warning or info)", quoteShort(severityText))
		}
		severity = s
	}
	link, err := urlField(doc, "link")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	imageURL, err := urlField(doc, "image_url")
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	labels, err := doc.stringMap("labels", maxLabelValueRunes)
	if err != nil {
		return oncall.AlertBatch{}, err
	}

	return singleAlert(dedupKey, strings.TrimSpace(rawTitle), oncall.Alert{
		Status: status, Title: title, Message: clean(message, maxMessageRunes), Severity: severity,
		Link: link, ImageURL: imageURL, Labels: labels,
	}, now), nil
}

// singleAlert is the batch of one alert of a webhook: grouped by
// "dedup:" + the dedup key, or "title:" + titleKey without one, which is
// also the alert's fingerprint. The alert starts at now when firing and
// ends at now when resolved.
func singleAlert(dedupKey, titleKey string, alert oncall.Alert, now time.Time) oncall.AlertBatch {
	groupKey, fingerprint := "dedup:", boundedID(dedupKey)
	if strings.TrimSpace(fingerprint) == "" {
		groupKey, fingerprint = "title:", boundedID(titleKey)
	}
	alert.Fingerprint = fingerprint
	if alert.Status == oncall.AlertFiring {
		alert.StartsAt = now.UTC()
	} else {
		alert.EndsAt = now.UTC()
	}
	return oneAlertBatch(groupKey+fingerprint, alert)
}

// parseStatus accepts "firing" or "resolved", in any case.
func parseStatus(path, s string) (oncall.AlertStatus, error) {
	switch st := oncall.AlertStatus(strings.ToLower(strings.TrimSpace(s))); st {
	case oncall.AlertFiring, oncall.AlertResolved:
		return st, nil
	}
	return "", inputErrorf(path, "must be firing or resolved, got %s", quoteShort(s))
}

// urlField returns the member key, which must be an absolute http(s) URL if
// present.
func urlField(doc webhookFields, key string) (string, error) {
	s, err := doc.str(key)
	if err != nil || s == "" {
		return "", err
	}
	if problem := checkURL(s); problem != "" {
		return "", inputErrorf(doc.at(key), "%s", problem)
	}
	return clean(s, maxURLBytes), nil
}

// webhookJSON is the typed fast path of ParseWebhook: the documented
// members of a webhook body.
type webhookJSON struct {
	Title    string            `json:"title"`
	Message  string            `json:"message"`
	Status   string            `json:"status"`
	DedupKey string            `json:"dedup_key"`
	Severity string            `json:"severity"`
	Link     string            `json:"link"`
	ImageURL string            `json:"image_url"`
	Labels   map[string]string `json:"labels"`
}

// webhookMembers are the JSON names of webhookJSON's fields.
var webhookMembers = [][]byte{
	[]byte("title"), []byte("message"), []byte("status"), []byte("dedup_key"),
	[]byte("severity"), []byte("link"), []byte("image_url"), []byte("labels"),
}

// webhookNoNestedNull marks labels in webhookMembers: a null label value
// is left to the document parser, which rejects it.
const webhookNoNestedNull = 1 << 7

// decodeWebhookFast decodes body into a webhookJSON with json.Unmarshal.
// It reports false whenever the result might differ from the document
// parser's: body is not a valid JSON object of members of the right types,
// a member name is escaped, repeats a documented one or matches one only
// case-insensitively (json.Unmarshal matches struct fields that way and
// merges repeated objects; the document parser takes names exactly and the
// last of repeated members), or a label value is null (json.Unmarshal
// stores it as "").
func decodeWebhookFast(body []byte) (*webhookJSON, bool) {
	if !startsObject(body) {
		return nil, false
	}
	var w webhookJSON
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, false
	}
	if !plainMembers(body, webhookMembers, webhookNoNestedNull) {
		return nil, false
	}
	return &w, true
}

func (w *webhookJSON) str(key string) (string, error) {
	switch key {
	case "title":
		return w.Title, nil
	case "message":
		return w.Message, nil
	case "status":
		return w.Status, nil
	case "dedup_key":
		return w.DedupKey, nil
	case "severity":
		return w.Severity, nil
	case "link":
		return w.Link, nil
	case "image_url":
		return w.ImageURL, nil
	}
	return "", fmt.Errorf("webhook member %q is not decoded by the fast path", key)
}

func (w *webhookJSON) stringMap(key string, maxValue int) (map[string]string, error) {
	if key != "labels" {
		return nil, fmt.Errorf("webhook member %q is not decoded by the fast path", key)
	}
	return sanitizeStringMap(key, w.Labels, maxValue, func(_ string, v string) (string, error) { return v, nil })
}

func (w *webhookJSON) at(key string) string { return key }
