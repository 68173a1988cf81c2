package integrations

import (
	"maps"
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
func ParseWebhook(body []byte, now time.Time) (oncall.AlertBatch, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return oncall.AlertBatch{}, err
	}

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

	groupKey, fingerprint := "dedup:", boundedID(dedupKey)
	if strings.TrimSpace(fingerprint) == "" {
		groupKey, fingerprint = "title:", boundedID(strings.TrimSpace(rawTitle))
	}
	groupKey += fingerprint

	alert := oncall.Alert{
		Fingerprint: fingerprint,
		Status:      status,
		Title:       title,
		Message:     clean(message, maxMessageRunes),
		Severity:    severity,
		Link:        link,
		ImageURL:    imageURL,
		Labels:      maps.Clone(labels),
	}
	if status == oncall.AlertFiring {
		alert.StartsAt = now.UTC()
	} else {
		alert.EndsAt = now.UTC()
	}
	return oncall.AlertBatch{
		GroupKey: groupKey,
		Status:   status,
		Title:    alert.Title,
		Message:  alert.Message,
		Severity: severity,
		Link:     link,
		ImageURL: imageURL,
		Labels:   labels,
		Alerts:   []oncall.Alert{alert},
	}, nil
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
func urlField(doc object, key string) (string, error) {
	s, err := doc.str(key)
	if err != nil || s == "" {
		return "", err
	}
	if problem := checkURL(s); problem != "" {
		return "", inputErrorf(doc.at(key), "%s", problem)
	}
	return clean(s, maxURLBytes), nil
}
