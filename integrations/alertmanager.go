package integrations

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// ParseAlertmanager parses the payload of a Prometheus Alertmanager
// webhook_config (kind "alertmanager", payload version "4"). One
// Alertmanager group is one incident:
//
//   - GroupKey is "am:" + groupKey (required); Status is the group's status,
//     so the incident resolves when Alertmanager reports the group resolved
//     (configure send_resolved: true).
//   - Title is commonAnnotations.summary, else commonLabels.alertname, else
//     the group labels ("{k=v, ...}"), else the first alert's summary or
//     alertname. Message is commonAnnotations.description (or .message),
//     else the first alert's. A note is added when Alertmanager truncated
//     the alert list (truncatedAlerts).
//   - Severity is commonLabels.severity, else the most severe severity
//     label among the alerts, else warning; unknown names count as absent.
//   - Link is the first usable generatorURL, else externalURL. URLs that
//     are not absolute http(s) URLs are dropped, not rejected: they come from
//     the Prometheus configuration, and the alert matters more.
//   - Labels are commonLabels (groupLabels if there are none).
//
// Every entry of alerts (at least one) becomes one oncall.Alert with its own
// status, labels, annotations and times (RFC 3339; Alertmanager's
// "0001-01-01T00:00:00Z" means unset). Its fingerprint is Alertmanager's,
// else a hash of its labels. A firing alert without startsAt starts at now;
// a resolved alert without endsAt ends at now.
//
// Anything malformed anywhere rejects the whole payload with an *InputError
// naming the path, e.g. "alerts[3].status: must be firing or resolved".
func ParseAlertmanager(body []byte, now time.Time) (oncall.AlertBatch, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	p := amPayload{now: now.UTC()}
	if err := p.decode(doc); err != nil {
		return oncall.AlertBatch{}, err
	}
	return p.batch(), nil
}

// amPayload is the decoded payload, sanitized.
type amPayload struct {
	now               time.Time
	groupKey          string
	truncatedAlerts   int
	status            oncall.AlertStatus
	groupLabels       map[string]string
	commonLabels      map[string]string
	commonAnnotations map[string]string
	externalURL       string
	alerts            []oncall.Alert
}

func (p *amPayload) decode(doc object) error {
	// version and receiver carry nothing we use; only their type is checked.
	for _, key := range []string{"version", "receiver"} {
		if _, err := doc.str(key); err != nil {
			return err
		}
	}
	groupKey, err := doc.str("groupKey")
	if err != nil {
		return err
	}
	if groupKey = boundedID(groupKey); strings.TrimSpace(groupKey) == "" {
		return inputErrorf("groupKey", "required")
	}
	p.groupKey = "am:" + groupKey
	if p.truncatedAlerts, err = doc.uint("truncatedAlerts"); err != nil {
		return err
	}
	statusText, err := doc.str("status")
	if err != nil {
		return err
	}
	if statusText == "" {
		return inputErrorf("status", "required")
	}
	if p.status, err = parseStatus("status", statusText); err != nil {
		return err
	}
	if p.groupLabels, err = doc.stringMap("groupLabels", maxLabelValueRunes); err != nil {
		return err
	}
	if p.commonLabels, err = doc.stringMap("commonLabels", maxLabelValueRunes); err != nil {
		return err
	}
	if p.commonAnnotations, err = doc.stringMap("commonAnnotations", maxMessageRunes); err != nil {
		return err
	}
	if p.externalURL, err = optionalURL(doc, "externalURL"); err != nil {
		return err
	}

	elems, ok, err := doc.arr("alerts")
	if err != nil {
		return err
	}
	if !ok || len(elems) == 0 {
		return inputErrorf("alerts", "must hold at least one alert")
	}
	p.alerts = make([]oncall.Alert, 0, len(elems))
	for i, raw := range elems {
		a, err := p.decodeAlert(indexPath("alerts", i), raw)
		if err != nil {
			return err
		}
		p.alerts = append(p.alerts, a)
	}
	return nil
}

// decodeAlert decodes one entry of alerts. An alert without a title or
// severity of its own gets the group's later, in batch.
func (p *amPayload) decodeAlert(path string, raw json.RawMessage) (oncall.Alert, error) {
	o, err := parseObject(path, raw)
	if err != nil {
		return oncall.Alert{}, err
	}
	var a oncall.Alert
	statusText, err := o.str("status")
	if err != nil {
		return oncall.Alert{}, err
	}
	if statusText == "" {
		return oncall.Alert{}, inputErrorf(o.at("status"), "required")
	}
	if a.Status, err = parseStatus(o.at("status"), statusText); err != nil {
		return oncall.Alert{}, err
	}
	if a.Labels, err = o.stringMap("labels", maxLabelValueRunes); err != nil {
		return oncall.Alert{}, err
	}
	if a.Annotations, err = o.stringMap("annotations", maxMessageRunes); err != nil {
		return oncall.Alert{}, err
	}
	if a.StartsAt, err = timeField(o, "startsAt"); err != nil {
		return oncall.Alert{}, err
	}
	if a.EndsAt, err = timeField(o, "endsAt"); err != nil {
		return oncall.Alert{}, err
	}
	if a.Link, err = optionalURL(o, "generatorURL"); err != nil {
		return oncall.Alert{}, err
	}
	fingerprint, err := o.str("fingerprint")
	if err != nil {
		return oncall.Alert{}, err
	}
	a.Fingerprint = boundedID(fingerprint)
	if strings.TrimSpace(a.Fingerprint) == "" {
		if a.Fingerprint, err = labelsFingerprint(o); err != nil {
			return oncall.Alert{}, err
		}
	}

	if a.StartsAt.IsZero() && a.Status == oncall.AlertFiring {
		a.StartsAt = p.now
	}
	if a.EndsAt.IsZero() && a.Status == oncall.AlertResolved {
		a.EndsAt = p.now
	}
	a.Title = clean(firstNonEmpty(a.Annotations["summary"], a.Labels["alertname"]), maxTitleRunes)
	a.Message = firstNonEmpty(a.Annotations["description"], a.Annotations["message"])
	a.Severity, _ = oncall.ParseSeverity(a.Labels["severity"])
	return a, nil
}

func (p *amPayload) batch() oncall.AlertBatch {
	b := oncall.AlertBatch{
		GroupKey: p.groupKey,
		Status:   p.status,
		Title:    p.title(),
		Message:  p.message(),
		Severity: p.severity(),
		Link:     p.externalURL,
		Labels:   p.commonLabels,
		Alerts:   p.alerts,
	}
	if len(b.Labels) == 0 {
		b.Labels = p.groupLabels
	}
	for _, a := range p.alerts {
		if a.Link != "" {
			b.Link = a.Link
			break
		}
	}
	for i := range b.Alerts {
		a := &b.Alerts[i]
		if a.Title == "" {
			a.Title = b.Title
		}
		if a.Severity == "" {
			a.Severity = b.Severity
		}
	}
	return b
}

func (p *amPayload) title() string {
	first := p.alerts[0]
	var group string
	if len(p.groupLabels) > 0 {
		pairs := make([]string, 0, len(p.groupLabels))
		for _, k := range slices.Sorted(maps.Keys(p.groupLabels)) {
			pairs = append(pairs, k+"="+p.groupLabels[k])
		}
		group = "{" + strings.Join(pairs, ", ") + "}"
	}
	title := firstNonEmpty(p.commonAnnotations["summary"], p.commonLabels["alertname"], group, first.Title)
	if title == "" {
		title = "Alertmanager alert group"
	}
	return clean(title, maxTitleRunes)
}

func (p *amPayload) message() string {
	first := p.alerts[0]
	msg := firstNonEmpty(p.commonAnnotations["description"], p.commonAnnotations["message"], first.Message)
	if p.truncatedAlerts > 0 {
		note := fmt.Sprintf("(%d more alerts were truncated by Alertmanager.)", p.truncatedAlerts)
		if msg != "" {
			msg += "\n\n"
		}
		msg += note
	}
	return clean(msg, maxMessageRunes)
}

func (p *amPayload) severity() oncall.Severity {
	if s, ok := oncall.ParseSeverity(p.commonLabels["severity"]); ok {
		return s
	}
	var most oncall.Severity
	for _, a := range p.alerts {
		most = oncall.MoreSevere(most, a.Severity)
	}
	if most == "" {
		return oncall.SeverityWarning
	}
	return most
}

// severityRank orders severities, most severe first.
// labelsFingerprint is the fingerprint of an alert that has none: 16 hex
// digits (like Alertmanager's) of a hash of its labels as sent, so the same
// label set always gets the same fingerprint.
func labelsFingerprint(o object) (string, error) {
	labels := map[string]string{}
	if sub, ok, err := o.obj("labels"); err != nil {
		return "", err
	} else if ok {
		for k, raw := range sub.members {
			v, err := decodeString(sub.at(k), raw)
			if err != nil {
				return "", err
			}
			labels[k] = v
		}
	}
	canonical, err := json.Marshal(labels) // sorted keys, unambiguous quoting
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:8]), nil
}

// timeField returns the RFC 3339 time member key in UTC; absent, empty and
// Go's zero time ("0001-01-01T00:00:00Z") are the zero time.
func timeField(o object, key string) (time.Time, error) {
	s, err := o.str(key)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, inputErrorf(o.at(key), "expected an RFC 3339 time, got %s", quoteShort(s))
	}
	t = t.UTC()
	switch {
	case t.Year() <= 1:
		return time.Time{}, nil
	case t.Year() > 9999: // reachable through an offset; JSON cannot encode it
		return time.Time{}, inputErrorf(o.at(key), "time out of range: %s", quoteShort(s))
	}
	return t, nil
}

// optionalURL returns the string member key if it is an absolute http(s)
// URL, and "" if it is absent or not one.
func optionalURL(o object, key string) (string, error) {
	s, err := o.str(key)
	if err != nil || s == "" || checkURL(s) != "" {
		return "", err
	}
	return clean(s, maxURLBytes), nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
