package integrations

import (
	"maps"
	"time"

	"github.com/oncallbot/oncall"
)

// Parser turns a request body into a normalized batch. It fills GroupKey,
// Status, Title, Message, Severity, Link, ImageURL, Labels and Alerts; the
// handler fills ID, Integration, Kind, ReceivedAt and Raw, and Channel and
// Escalation from the integration's first route matching Labels. now is
// when the request was received. Any problem with the body is an error (an
// *InputError naming the path at fault) and nothing of the body is queued.
// On success every string of the batch is valid UTF-8 without NUL bytes,
// and body is one valid JSON document: the handler queues it as the batch's
// Raw without validating it again.
type Parser func(body []byte, now time.Time) (oncall.AlertBatch, error)

// builtinParsers maps each kind served under /integrations/{kind}/{token}
// to its parser. A new source is one file with its parser, golden tests
// and fuzz test, and one line here.
func builtinParsers() map[string]Parser {
	return map[string]Parser{
		"webhook":      ParseWebhook,
		"alertmanager": ParseAlertmanager,
		"grafana":      ParseGrafana,
	}
}

// oneAlertBatch is the batch of a request that reports one alert: its
// status, title, message, severity, link, image and labels are the
// alert's (the alert keeps a copy of the labels).
func oneAlertBatch(groupKey string, alert oncall.Alert) oncall.AlertBatch {
	labels := alert.Labels
	alert.Labels = maps.Clone(labels)
	return oncall.AlertBatch{
		GroupKey: groupKey,
		Status:   alert.Status,
		Title:    alert.Title,
		Message:  alert.Message,
		Severity: alert.Severity,
		Link:     alert.Link,
		ImageURL: alert.ImageURL,
		Labels:   labels,
		Alerts:   []oncall.Alert{alert},
	}
}

// endpointKinds have HTTP endpoints of their own rather than
// /integrations/{kind}/{token}: PagerDuty's Events API (/v2/enqueue, the
// token in the body) and Opsgenie's Alert API (/v2/alerts, the token in a
// header).
var endpointKinds = []string{"pagerduty", "opsgenie"}
