// Package oncall holds the domain types of the on-call bot and the few
// interfaces shared between its parts. Each subpackage (integrations, queue,
// storage, escalation, bot, schedule) depends on this package, not on its
// siblings; cmd/oncall wires them together.
package oncall

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
)

// Errors shared by the parts. Wrap them with context; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change cannot be made in the current state,
	// e.g. reopening an incident whose group already has a newer open one.
	ErrConflict = errors.New("conflict")
	// ErrPermanent marks a failure to page that trying again cannot fix:
	// an invalid phone number, a deactivated Slack user, a channel that
	// does not exist. Senders wrap it (errors.Is finds it).
	ErrPermanent = errors.New("permanent failure")
)

// Severity of an alert or incident, most severe first.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityError    Severity = "error"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// ParseSeverity maps the names monitoring tools use to a Severity.
// The empty string is reported as not ok so callers can apply their default.
func ParseSeverity(s string) (Severity, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "crit", "fatal", "emergency", "disaster", "page", "p1":
		return SeverityCritical, true
	case "error", "err", "high", "major", "p2":
		return SeverityError, true
	case "warning", "warn", "average", "medium", "minor", "p3":
		return SeverityWarning, true
	case "info", "information", "informational", "low", "notice", "ok", "none", "p4", "p5":
		return SeverityInfo, true
	}
	return "", false
}

// MoreSevere returns the more severe of a and b; a when they are equally
// severe. Unknown and empty severities rank below every known one.
func MoreSevere(a, b Severity) Severity {
	if severityRank(b) < severityRank(a) {
		return b
	}
	return a
}

func severityRank(s Severity) int {
	switch s {
	case SeverityCritical:
		return 0
	case SeverityError:
		return 1
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 3
	}
	return 4
}

// AlertStatus is the state a source reports for an alert.
type AlertStatus string

const (
	AlertFiring   AlertStatus = "firing"
	AlertResolved AlertStatus = "resolved"
)

// Alert is one alert as a source reported it, normalized.
type Alert struct {
	// Fingerprint identifies the alert within its group across repeats
	// (Alertmanager's fingerprint; the dedup key for a plain webhook).
	Fingerprint string            `json:"fingerprint"`
	Status      AlertStatus       `json:"status"`
	Title       string            `json:"title"`
	Message     string            `json:"message,omitempty"`
	Severity    Severity          `json:"severity,omitempty"`
	Link        string            `json:"link,omitempty"`
	ImageURL    string            `json:"image_url,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"starts_at,omitzero"`
	EndsAt      time.Time         `json:"ends_at,omitzero"`
}

// AlertBatch is what one accepted request becomes. Ingest validates and
// normalizes the whole request before it is queued, so a batch is either
// queued whole or rejected whole. It is the message on the ALERTS stream.
type AlertBatch struct {
	// ID is unique per accepted request; it deduplicates redelivery.
	ID          string    `json:"id"`
	Integration string    `json:"integration"` // integration name from the config
	Kind        string    `json:"kind"`
	ReceivedAt  time.Time `json:"received_at"`
	// GroupKey groups batches into one open incident.
	GroupKey string `json:"group_key"`
	// Status of the group: resolved resolves the open incident.
	Status AlertStatus `json:"status"`
	// Summary of the group, shown on the incident.
	Title    string            `json:"title"`
	Message  string            `json:"message,omitempty"`
	Severity Severity          `json:"severity"`
	Link     string            `json:"link,omitempty"`
	ImageURL string            `json:"image_url,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Channel and Escalation are set by ingest from the first route of
	// the integration that matches Labels; a new incident of the batch
	// goes there. Empty means the integration's own.
	Channel    string  `json:"channel,omitempty"`
	Escalation string  `json:"escalation,omitempty"`
	Alerts     []Alert `json:"alerts"`
	// Action, when set (ActionAcknowledge, ActionUnacknowledge), is what
	// the source did to the open incident of GroupKey (PagerDuty's and
	// Opsgenie's acknowledge), done by the source; Alerts may be empty and
	// no incident is opened. Status resolved resolves as always.
	Action Action `json:"action,omitempty"`
	// Note is added to the timeline of the open incident of GroupKey
	// (Opsgenie's notes; a note about the batch itself, such as a mapping
	// template that failed).
	Note string `json:"note,omitempty"`
	// Heartbeat marks the integration's heartbeat: it records the
	// integration alive and resolves its missed-heartbeat incident.
	Heartbeat bool `json:"heartbeat,omitempty"`
	// Maintenance: the integration was in a maintenance window of the
	// config when the batch arrived: its incident is stored and shown,
	// and nobody is paged.
	Maintenance bool `json:"maintenance,omitempty"`
	// Raw is the request body as received, kept for the record.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// BatchOutcome is what processing an accepted batch did (Opsgenie's
// request status).
type BatchOutcome struct {
	// Processed is false while the batch waits in the queue.
	Processed   bool
	IncidentID  int64 // 0 when it touched no incident
	GroupKey    string
	ProcessedAt time.Time
	// Action: created, joined, resolved, acknowledged, unacknowledged,
	// noted, heartbeat, no_incident.
	Action string
}

// Integration is an inbound alert source from the config.
type Integration struct {
	Name       string
	Kind       string
	Token      string // the secret in clear; only its hash is stored
	Channel    string // Slack channel id for its incidents
	Escalation string // escalation chain name, may be empty
	// Routes send some of its alerts elsewhere; the first match wins. The
	// config's global routes follow the integration's own.
	Routes []Route
	// Heartbeat, if set, is how long the integration may stay silent on
	// its heartbeat URL before an incident is opened.
	Heartbeat time.Duration
	// Maintenance windows: alerts are stored and shown, nobody is paged.
	Maintenance []TimeRange
	// RateLimit is requests per minute accepted before 429 (0: default).
	RateLimit int
	// GroupKey, if set, is a text/template of the payload that groups its
	// alerts into incidents instead of the kind's default.
	GroupKey string
	// Mapping (webhook kind) holds text/templates of the payload for the
	// fields of an alert: title, message, dedup_key, severity, status,
	// resolved_when, link, image.
	Mapping map[string]string
}

// TimeRange is [Start, End).
type TimeRange struct {
	Start, End time.Time
}

// Contains says whether t is in the range.
func (r TimeRange) Contains(t time.Time) bool { return !t.Before(r.Start) && t.Before(r.End) }

// Route sends the alerts of an integration whose labels match to another
// Slack channel and/or escalation chain, and may override their severity.
type Route struct {
	// Match holds equality matchers: a batch matches when each of its
	// labels named here has exactly the value given.
	Match map[string]string
	// MatchRE holds regular expression matchers (anchored, RE2 syntax):
	// the label's value must match the whole expression.
	MatchRE map[string]*regexp.Regexp
	// NotMatch holds negative matchers: the label must not have the value
	// given (an absent label has the empty value).
	NotMatch   map[string]string
	Channel    string   // empty: the integration's
	Escalation string   // empty: the integration's
	Severity   Severity // empty: as the source said
}

// IncidentStatus is the lifecycle state of an incident.
type IncidentStatus string

const (
	StatusTriggered    IncidentStatus = "triggered"
	StatusAcknowledged IncidentStatus = "acknowledged"
	StatusResolved     IncidentStatus = "resolved"
)

// Incident is a group of alerts that pages once.
type Incident struct {
	ID          int64
	Integration string
	Kind        string
	Channel     string
	GroupKey    string
	Status      IncidentStatus
	Title       string
	Message     string
	Severity    Severity
	Link        string
	ImageURL    string
	Labels      map[string]string
	// AlertCount counts every alert received, repeats included.
	AlertCount int
	// Firing and Resolved count distinct alerts (by fingerprint) by their
	// latest status.
	Firing   int
	Resolved int
	// Escalations counts the times the incident was escalated.
	Escalations int
	Escalation  string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	AckedAt     time.Time // zero unless acknowledged
	AckedBy     Actor
	ResolvedAt  time.Time // zero unless resolved
	// SilencedUntil: nobody is paged for the incident before it (zero:
	// not silenced; UntilResolved: until it is resolved).
	SilencedUntil time.Time
	ResolvedBy    Actor
}

// Actor is who caused a change: "source" for the monitoring tool,
// "slack:U123" for a Slack user, "system" for the bot itself.
type Actor string

const (
	ActorSource Actor = "source"
	ActorSystem Actor = "system"
)

// SlackActor is the Actor for a Slack user id.
func SlackActor(userID string) Actor { return Actor("slack:" + userID) }

// SlackUser returns the Slack user id of a Slack actor.
func (a Actor) SlackUser() (string, bool) {
	id, ok := strings.CutPrefix(string(a), "slack:")
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

// UntilResolved is the SilencedUntil of an incident silenced until it is
// resolved.
var UntilResolved = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Silenced says whether nobody is to be paged for the incident at t.
func (inc Incident) Silenced(t time.Time) bool { return inc.SilencedUntil.After(t) }

// Action is something a person does to an incident.
type Action string

const (
	ActionAcknowledge   Action = "acknowledge"
	ActionUnacknowledge Action = "unacknowledge"
	ActionResolve       Action = "resolve"
	ActionReopen        Action = "reopen"
	ActionEscalate      Action = "escalate"
)

// ParseAction accepts an Action by name.
func ParseAction(s string) (Action, bool) {
	switch a := Action(s); a {
	case ActionAcknowledge, ActionUnacknowledge, ActionResolve, ActionReopen, ActionEscalate:
		return a, true
	}
	return "", false
}

// EventKind names an entry of an incident's timeline.
type EventKind string

const (
	EventCreated        EventKind = "created"
	EventAlert          EventKind = "alert" // a repeat or another alert joined the group
	EventAcknowledged   EventKind = "acknowledged"
	EventUnacknowledged EventKind = "unacknowledged"
	EventResolved       EventKind = "resolved"
	EventReopened       EventKind = "reopened"
	EventEscalated      EventKind = "escalated"
	// Paging: Target is who was paged (a person as the chain named them,
	// or a Mention* target), Note says how ("sms", "call", "slack") and
	// any detail.
	EventPaged         EventKind = "paged"          // the provider accepted the page
	EventPageDelivered EventKind = "page_delivered" // the provider confirmed it arrived (or the call was answered)
	EventPageFailed    EventKind = "page_failed"    // the page failed for good; Note says why and what comes next
	// EventEscalationStep: the chain moved on by itself (Note: what it
	// pages next and why).
	EventEscalationStep EventKind = "escalation_step"
	// EventNote: a note the source added (Opsgenie's notes) or one about a
	// batch (a mapping template that failed, a maintenance window).
	EventNote EventKind = "note"
	// EventSilenced: paging is paused until the time in Note (or until
	// resolved); EventUnsilenced ends it early.
	EventSilenced   EventKind = "silenced"
	EventUnsilenced EventKind = "unsilenced"
)

// Event is one entry of an incident's timeline.
type Event struct {
	ID         int64
	IncidentID int64
	Kind       EventKind
	Actor      Actor
	// Target is who an EventPaged, EventPageDelivered or EventPageFailed
	// is about; empty for other kinds.
	Target string
	// Channel is how they were paged, for the same kinds.
	Channel NotifyChannel
	Note    string
	At      time.Time
}

// Shift is a span of time when one person is on call for a schedule.
type Shift struct {
	Schedule string `json:"schedule"`
	// Person as the source names them: an email, a Slack id or @handle,
	// or a name. Resolved to a user with the config's users.
	Person string    `json:"person"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"` // exclusive
	// Source: "calendar", "rotation", "overrides" (the overrides calendar)
	// or "override" (made in Slack, stored in Postgres).
	Source string `json:"source"`
}

// Override puts Person on call for a schedule from Start to End, above
// every calendar and rotation: a swap or a take-over made in Slack.
type Override struct {
	ID        int64
	Schedule  string
	Person    string // a config user reference: email or Slack id
	Start     time.Time
	End       time.Time
	CreatedBy Actor
	Reason    string
	CreatedAt time.Time
}

// StepKind names what a step of an escalation chain does.
type StepKind string

const (
	StepNotifySchedule  StepKind = "notify_schedule"  // whoever is on call for Schedule
	StepNotifyUsers     StepKind = "notify_users"     // each of Users
	StepNotifyUsergroup StepKind = "notify_usergroup" // Usergroup, mentioned in the incident's channel
	StepNotifyChannel   StepKind = "notify_channel"   // @here or @channel in the incident's channel
	StepWait            StepKind = "wait"             // Wait before the next step
)

// EscalationChain is the ordered steps taken for an incident until someone
// acknowledges it. The steps run Repeat more times after the first pass.
type EscalationChain struct {
	Name   string
	Repeat int
	// AutoResolve, if set, resolves the incident that long after the last
	// pass ended with nobody acknowledging it.
	AutoResolve time.Duration
	// AckTimeout, if set, restarts the chain of an incident acknowledged
	// that long ago and still not resolved.
	AckTimeout time.Duration
	Steps      []EscalationStep
}

// EscalationStep is one step of a chain; Kind says which field applies.
type EscalationStep struct {
	Kind      StepKind
	Schedule  string        // StepNotifySchedule: schedule name
	Users     []string      // StepNotifyUsers: user references (email or Slack id)
	Usergroup string        // StepNotifyUsergroup: Slack user group id
	Mention   string        // StepNotifyChannel: "here" or "channel"
	Wait      time.Duration // StepWait
}

// NotifyChannel is how a person is paged.
type NotifyChannel string

const (
	NotifySlack NotifyChannel = "slack"
	NotifySMS   NotifyChannel = "sms"
	NotifyCall  NotifyChannel = "call"
)

// Name is how people call a way of paging: "Slack", "SMS", "phone call".
func (c NotifyChannel) Name() string {
	switch c {
	case NotifySlack:
		return "Slack"
	case NotifySMS:
		return "SMS"
	case NotifyCall:
		return "phone call"
	}
	return string(c)
}

// NotifyRule is one step of a personal notification plan: page by Channel,
// or (Channel empty) wait before the next rule.
type NotifyRule struct {
	Channel NotifyChannel
	Wait    time.Duration
}

// Mention targets of deliveries that are not one person: Slack's special
// mentions, posted in the incident's channel. A usergroup is
// MentionUsergroupPrefix + its id, as Slack writes <!subteam^S0123>.
const (
	MentionHere            = "!here"
	MentionChannel         = "!channel"
	MentionUsergroupPrefix = "!subteam^"
)

// DeliveryStatus is where a delivery is in its life.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"   // waiting for DueAt
	DeliveryQueued    DeliveryStatus = "queued"    // claimed by a worker, on its way
	DeliverySending   DeliveryStatus = "sending"   // the provider call may have been made
	DeliverySent      DeliveryStatus = "sent"      // the provider accepted it
	DeliveryDelivered DeliveryStatus = "delivered" // the provider confirmed it arrived
	DeliveryFailed    DeliveryStatus = "failed"
	DeliveryCancelled DeliveryStatus = "cancelled" // acknowledged or resolved before it was sent
)

// HeartbeatGroupKey groups the incidents of an integration's missed
// heartbeats (one open at most), and its heartbeats, which resolve it.
const HeartbeatGroupKey = "oncall:heartbeat"

// HeartbeatBatch is the batch of a heartbeat of integration: it resolves
// the integration's missed-heartbeat incident, whose one alert has the
// fingerprint HeartbeatGroupKey.
func HeartbeatBatch(integration string) AlertBatch {
	title := "Heartbeat of " + integration
	return AlertBatch{Integration: integration, GroupKey: HeartbeatGroupKey, Status: AlertResolved, Heartbeat: true,
		Title: title, Severity: SeverityInfo,
		Alerts: []Alert{{Fingerprint: HeartbeatGroupKey, Status: AlertResolved, Title: title}}}
}

// Direct pages: an incident someone opens from Slack (/oncall page) is
// an alert batch of this integration and kind; no config declares them.
const (
	PageIntegration = "slack"
	PageKind        = "page"
)

// Page is one delivery to send, with what its sender needs.
type Page struct {
	Delivery Delivery
	Incident Incident // as it is when the page is sent
	Phone    string   // the person's number (E.164) for sms and call; empty otherwise
}

// Delivery is one page of one person (or one mention in a channel) by one
// channel. Key is unique: "incident:step:repeat:person:channel", with
// ":N" appended for the Nth use of a channel in the same plan (N > 1).
type Delivery struct {
	ID         int64
	Key        string
	IncidentID int64
	Step       int
	Repeat     int
	// Person is a config user reference (email or Slack id) as the chain or
	// the schedule named them, or one of the Mention* targets.
	Person     string
	Channel    NotifyChannel
	DueAt      time.Time
	Status     DeliveryStatus
	Attempts   int
	Error      string
	ProviderID string
	CreatedAt  time.Time
	SentAt     time.Time // zero until sent
}
