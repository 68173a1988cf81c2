package integrations

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// ParseGrafana parses the payload of a Grafana unified alerting webhook
// contact point (kind "grafana", payload version "1"). Grafana's
// notifications are Alertmanager's with a few fields more, so one Grafana
// alert group is one incident, and the rules of ParseAlertmanager apply
// except:
//
//   - GroupKey is "grafana:" + groupKey; without one, "grafana:labels:" and a
//     hash of groupLabels. Status is resolved only when every alert is; the
//     payload's status is checked, not trusted.
//   - Title is Grafana's title (its "[FIRING:2] ..." line), else as for
//     Alertmanager. Message is Grafana's message, else as for Alertmanager.
//   - Link is the first alert link (panelURL, else dashboardURL, else
//     generatorURL), else externalURL; ImageURL is the first alert imageURL.
//   - Labels get "grafana_org": orgId, which wins over a label of that name.
//
// Every alert links to its panel, dashboard or rule the same way, carries
// its imageURL, and has its values ("B=22.5, C=1", by name; Grafana 9's
// valueString when there are none) as the annotation "values".
//
// Anything malformed anywhere rejects the whole payload with an *InputError
// naming the path, e.g. "alerts[0].values.B: expected number, got string".
func ParseGrafana(body []byte, now time.Time) (oncall.AlertBatch, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	p := grafanaPayload{am: amPayload{now: now.UTC()}}
	if err := p.decode(doc); err != nil {
		return oncall.AlertBatch{}, err
	}
	return p.batch(), nil
}

// grafanaPayload is the decoded payload, sanitized. The part Grafana shares
// with Alertmanager lives in am, so that its rules are amPayload's own; its
// groupKey, status and truncatedAlerts stay unset (Grafana's differ).
type grafanaPayload struct {
	am              amPayload
	groupKey        string
	orgID           string // decimal; "" when absent
	title           string
	message         string
	truncatedAlerts int
}

func (p *grafanaPayload) decode(doc object) error {
	// These carry nothing we use; only their type is checked.
	for _, key := range []string{"version", "receiver", "state"} {
		if _, err := doc.str(key); err != nil {
			return err
		}
	}
	groupKey, err := doc.str("groupKey")
	if err != nil {
		return err
	}
	if p.truncatedAlerts, err = doc.uint("truncatedAlerts"); err != nil {
		return err
	}
	if _, ok := doc.member("orgId"); ok {
		org, err := doc.uint("orgId")
		if err != nil {
			return err
		}
		p.orgID = strconv.Itoa(org)
	}
	if statusText, err := doc.str("status"); err != nil {
		return err
	} else if statusText != "" {
		if _, err := parseStatus("status", statusText); err != nil {
			return err
		}
	}
	if p.title, err = doc.str("title"); err != nil {
		return err
	}
	if p.message, err = doc.str("message"); err != nil {
		return err
	}
	am := &p.am
	if am.groupLabels, err = doc.stringMap("groupLabels", maxLabelValueRunes); err != nil {
		return err
	}
	if am.commonLabels, err = doc.stringMap("commonLabels", maxLabelValueRunes); err != nil {
		return err
	}
	if am.commonAnnotations, err = doc.stringMap("commonAnnotations", maxMessageRunes); err != nil {
		return err
	}
	if am.externalURL, err = optionalURL(doc, "externalURL"); err != nil {
		return err
	}

	if groupKey = boundedID(groupKey); strings.TrimSpace(groupKey) != "" {
		p.groupKey = "grafana:" + groupKey
	} else {
		p.groupKey = "grafana:" + groupLabelsKey(am.groupLabels)
	}

	elems, ok, err := doc.arr("alerts")
	if err != nil {
		return err
	}
	if !ok || len(elems) == 0 {
		if _, legacy := doc.member("evalMatches"); legacy {
			return inputErrorf("alerts", "must hold at least one alert (this is a legacy Grafana alerting notification; use unified alerting)")
		}
		return inputErrorf("alerts", "must hold at least one alert")
	}
	am.alerts = make([]oncall.Alert, 0, len(elems))
	for i, raw := range elems {
		a, err := p.decodeAlert(indexPath("alerts", i), raw)
		if err != nil {
			return err
		}
		am.alerts = append(am.alerts, a)
	}
	return nil
}

// decodeAlert decodes one entry of alerts: what Alertmanager also sends
// through amPayload.decodeAlert, then Grafana's own fields of the same
// object.
func (p *grafanaPayload) decodeAlert(path string, raw json.RawMessage) (oncall.Alert, error) {
	a, err := p.am.decodeAlert(path, raw)
	if err != nil {
		return oncall.Alert{}, err
	}
	o, err := parseObject(path, raw)
	if err != nil {
		return oncall.Alert{}, err
	}
	if _, err := o.str("silenceURL"); err != nil {
		return oncall.Alert{}, err
	}
	panel, err := optionalURL(o, "panelURL")
	if err != nil {
		return oncall.Alert{}, err
	}
	dashboard, err := optionalURL(o, "dashboardURL")
	if err != nil {
		return oncall.Alert{}, err
	}
	a.Link = firstNonEmpty(panel, dashboard, a.Link)
	if a.ImageURL, err = optionalURL(o, "imageURL"); err != nil {
		return oncall.Alert{}, err
	}
	values, err := grafanaValues(o)
	if err != nil {
		return oncall.Alert{}, err
	}
	if values != "" {
		if a.Annotations == nil {
			a.Annotations = make(map[string]string, 1)
		}
		a.Annotations["values"] = values
	}
	return a, nil
}

// grafanaValues renders the values of the query and expressions that made
// the alert ("B=22.5, C=1", sorted by name), else its valueString, the form
// Grafana 9 sends instead.
func grafanaValues(o object) (string, error) {
	valueString, err := o.str("valueString")
	if err != nil {
		return "", err
	}
	sub, ok, err := o.obj("values")
	if err != nil {
		return "", err
	}
	if ok {
		values, err := sanitizeStringMap(sub.path, sub.members, maxLabelValueRunes, func(k string, raw json.RawMessage) (string, error) {
			return decodeNumber(sub.at(k), raw)
		})
		if err != nil {
			return "", err
		}
		pairs := make([]string, 0, len(values))
		for _, k := range slices.Sorted(maps.Keys(values)) {
			pairs = append(pairs, k+"="+values[k])
		}
		if len(pairs) > 0 {
			return clean(strings.Join(pairs, ", "), maxMessageRunes), nil
		}
	}
	return clean(valueString, maxMessageRunes), nil
}

// decodeNumber returns the JSON number raw written the way encoding/json
// writes a float64: "1", "22.5", "2473545728", "1e-07".
func decodeNumber(path string, raw json.RawMessage) (string, error) {
	if k := jsonKind(raw); k != "number" {
		return "", inputErrorf(path, "expected number, got %s", k)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		return "", inputErrorf(path, "number out of range: %s", quoteShort(string(raw)))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.FormatFloat(f, format, -1, 64), nil
}

// groupLabelsKey stands in for a missing groupKey: a hash of the group
// labels, so that the notifications of one group keep one key. Sanitized
// strings hold no NUL, which makes it an unambiguous separator.
func groupLabelsKey(labels map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k + "\x00" + labels[k] + "\x00"))
	}
	return "labels:" + hex.EncodeToString(h.Sum(nil)[:8])
}

func (p *grafanaPayload) batch() oncall.AlertBatch {
	b := oncall.AlertBatch{
		GroupKey: p.groupKey,
		Status:   oncall.AlertResolved,
		Title:    p.batchTitle(),
		Message:  p.batchMessage(),
		Severity: p.am.severity(),
		Link:     p.am.externalURL,
		Labels:   maps.Clone(p.am.commonLabels),
		Alerts:   p.am.alerts,
	}
	if len(b.Labels) == 0 {
		b.Labels = maps.Clone(p.am.groupLabels)
	}
	if p.orgID != "" {
		if b.Labels == nil {
			b.Labels = make(map[string]string, 1)
		}
		b.Labels["grafana_org"] = p.orgID
	}
	if i := slices.IndexFunc(b.Alerts, func(a oncall.Alert) bool { return a.Link != "" }); i >= 0 {
		b.Link = b.Alerts[i].Link
	}
	if i := slices.IndexFunc(b.Alerts, func(a oncall.Alert) bool { return a.ImageURL != "" }); i >= 0 {
		b.ImageURL = b.Alerts[i].ImageURL
	}
	for i := range b.Alerts {
		a := &b.Alerts[i]
		if a.Status == oncall.AlertFiring {
			b.Status = oncall.AlertFiring
		}
		if a.Title == "" {
			a.Title = b.Title
		}
		if a.Severity == "" {
			a.Severity = b.Severity
		}
	}
	return b
}

func (p *grafanaPayload) batchTitle() string {
	// Grafana's default title template leaves blanks at its ends.
	if title := strings.TrimSpace(clean(p.title, maxTitleRunes)); title != "" {
		return title
	}
	// amPayload.title's last resort names Alertmanager.
	am := &p.am
	if len(am.groupLabels) == 0 && firstNonEmpty(am.commonAnnotations["summary"], am.commonLabels["alertname"], am.alerts[0].Title) == "" {
		return "Grafana alert group"
	}
	return am.title()
}

func (p *grafanaPayload) batchMessage() string {
	// Grafana's default message template ends in blank lines.
	msg := strings.TrimSpace(clean(p.message, maxMessageRunes))
	if msg == "" {
		msg = p.am.message() // am.truncatedAlerts is 0: no Alertmanager note
	}
	if p.truncatedAlerts > 0 {
		note := fmt.Sprintf("(%d more alerts were truncated by Grafana.)", p.truncatedAlerts)
		if msg != "" {
			msg += "\n\n"
		}
		msg += note
	}
	return clean(msg, maxMessageRunes)
}
