package bot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
)

// Action ids of the incident message's buttons; the value of each button
// is the incident id.
const (
	ActionIDAcknowledge   = "incident_acknowledge"
	ActionIDUnacknowledge = "incident_unacknowledge"
	ActionIDResolve       = "incident_resolve"
	ActionIDReopen        = "incident_reopen"
	ActionIDEscalate      = "incident_escalate"
	// ActionIDSilence is the select menu of silences: each option's value
	// is "<incident id>:<choice>" (silenceChoices).
	ActionIDSilence   = "incident_silence"
	ActionIDUnsilence = "incident_unsilence"
)

// actionOf maps a button's action id to the incident action it asks for.
func actionOf(actionID string) (oncall.Action, bool) {
	switch actionID {
	case ActionIDAcknowledge:
		return oncall.ActionAcknowledge, true
	case ActionIDUnacknowledge:
		return oncall.ActionUnacknowledge, true
	case ActionIDResolve:
		return oncall.ActionResolve, true
	case ActionIDReopen:
		return oncall.ActionReopen, true
	case ActionIDEscalate:
		return oncall.ActionEscalate, true
	}
	return "", false
}

// Slack's limits on what the message shows
// (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxHeaderText  = 150
	maxSectionText = 3000
	maxURL         = 3000
	// maxLabelValue keeps one huge label from crowding out the others.
	maxLabelValue = 200
)

// metadataEventType marks the bot's incident messages in Slack (payload
// incident_id), so that they can be found again from the channel history;
// eventMetadataType marks the thread replies (payload incident_id and
// event_id).
const (
	metadataEventType = "oncall_incident"
	eventMetadataType = "oncall_event"
)

// RenderIncident renders an incident's Slack message at now: header,
// status, the source's message, image, counts, labels and the buttons that
// apply to its status. It depends on nothing but the incident and whether
// its silence is over at now, so rendering an unchanged incident gives the
// same blocks (and hash) until then; times are shown with Slack's <!date>
// so each reader sees them in their own time zone.
func RenderIncident(inc oncall.Incident, now time.Time) []slack.Block {
	return renderIncident(inc, now, true)
}

// IncidentText is the message's plain text: what notifications and
// clients that cannot show blocks display.
func IncidentText(inc oncall.Incident) string {
	return truncate(fmt.Sprintf("%s #%d [%s] %s", statusWord(inc.Status), inc.ID, severityName(inc.Severity),
		escape(titleOf(inc))), maxSectionText)
}

func renderIncident(inc oncall.Incident, now time.Time, withImage bool) []slack.Block {
	silenced := inc.Status != oncall.StatusResolved && inc.Silenced(now)
	status := statusLine(inc)
	if silenced {
		status += "\n:no_bell: Silenced " + untilText(inc.SilencedUntil) + ": nobody is paged"
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(truncate(fmt.Sprintf("%s #%d %s", headerEmoji(inc), inc.ID, titleOf(inc)), maxHeaderText))),
		slack.NewSectionBlock(markdown(status), nil, nil, slack.SectionBlockOptionBlockID("status")),
	}
	if msg := strings.TrimSpace(inc.Message); msg != "" {
		blocks = append(blocks, slack.NewSectionBlock(markdown(truncate(escape(msg), maxSectionText)), nil, nil,
			slack.SectionBlockOptionBlockID("message")))
	}
	if img, ok := safeURL(inc.ImageURL); ok && withImage {
		blocks = append(blocks, slack.NewImageBlock(img, "Graph of the alert", "image", nil))
	}
	blocks = append(blocks, slack.NewContextBlock("summary", markdown(summaryLine(inc))))
	if len(inc.Labels) > 0 {
		blocks = append(blocks, slack.NewContextBlock("labels", markdown(labelsLine(inc.Labels))))
	}
	return append(blocks, actionsBlock(inc, silenced))
}

// actionsBlock holds the buttons that apply to the incident's status and,
// while it is open, the Silence menu (or Unsilence while it is silenced).
func actionsBlock(inc oncall.Incident, silenced bool) *slack.ActionBlock {
	id := strconv.FormatInt(inc.ID, 10)
	button := func(actionID, text string, style slack.Style) *slack.ButtonBlockElement {
		b := slack.NewButtonBlockElement(actionID, id, plain(text))
		b.Style = style
		return b
	}
	escalate := button(ActionIDEscalate, "Escalate", "")
	escalate.Confirm = slack.NewConfirmationBlockObject(
		plain(fmt.Sprintf("Escalate incident #%d?", inc.ID)),
		markdown("This notifies the channel and pages the next step of the escalation."),
		plain("Escalate"), plain("Cancel"))

	var elems []slack.BlockElement
	switch inc.Status {
	case oncall.StatusResolved:
		elems = append(elems, button(ActionIDReopen, "Reopen", ""))
	case oncall.StatusAcknowledged:
		elems = append(elems, button(ActionIDUnacknowledge, "Unacknowledge", ""),
			button(ActionIDResolve, "Resolve", slack.StylePrimary), escalate)
	default:
		elems = append(elems, button(ActionIDAcknowledge, "Acknowledge", slack.StylePrimary),
			button(ActionIDResolve, "Resolve", ""), escalate)
	}
	switch {
	case inc.Status == oncall.StatusResolved:
	case silenced:
		elems = append(elems, button(ActionIDUnsilence, "Unsilence", ""))
	default:
		elems = append(elems, silenceMenu(inc.ID))
	}
	return slack.NewActionBlock("actions", elems...)
}

func statusLine(inc oncall.Incident) string {
	switch inc.Status {
	case oncall.StatusAcknowledged:
		return "*Acknowledged* by " + actorText(inc.AckedBy, inc.Kind) + at(inc.AckedAt)
	case oncall.StatusResolved:
		return "*Resolved* by " + actorText(inc.ResolvedBy, inc.Kind) + at(inc.ResolvedAt)
	default:
		line := "*Triggered*"
		if !inc.CreatedAt.IsZero() {
			line += " since " + slackDate(inc.CreatedAt)
		}
		return line
	}
}

func at(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " at " + slackDate(t)
}

// slackDate formats t for each reader's time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func summaryLine(inc oncall.Incident) string {
	parts := []string{"Severity: *" + severityName(inc.Severity) + "*"}
	if inc.Firing+inc.Resolved > 0 {
		parts = append(parts, fmt.Sprintf("%d firing, %d resolved", inc.Firing, inc.Resolved))
	}
	parts = append(parts, plural(inc.AlertCount, "alert")+" received")
	if inc.Escalations > 0 {
		// Also makes the message change at each escalation, which is what
		// tells a new Escalate click from a double click (see clickKey).
		parts = append(parts, "escalated "+plural(inc.Escalations, "time"))
	}
	if src := sourceText(inc); src != "" {
		parts = append(parts, src)
	}
	if link, ok := safeURL(inc.Link); ok {
		parts = append(parts, "<"+link+"|Open in source>")
	}
	return strings.Join(parts, " · ")
}

func sourceText(inc oncall.Incident) string {
	kind := sourceName(inc.Kind)
	switch {
	case inc.Integration == "":
		return escape(kind)
	case kind == "" || strings.EqualFold(kind, inc.Integration):
		return "via " + escape(inc.Integration)
	default:
		return fmt.Sprintf("via %s (%s)", escape(inc.Integration), escape(kind))
	}
}

// labelsLine shows labels as `name=value`, sorted, within one text object.
func labelsLine(labels map[string]string) string {
	const budget = maxSectionText - 40 // room for the "and N more" tail
	var b strings.Builder
	keys := slices.Sorted(maps.Keys(labels))
	for i, k := range keys {
		item := "`" + codeSafe(k) + "=" + codeSafe(truncate(labels[k], maxLabelValue)) + "`"
		if b.Len() > 0 {
			item = "  " + item
		}
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(item) > budget {
			fmt.Fprintf(&b, "  … and %d more", len(keys)-i)
			break
		}
		b.WriteString(item)
	}
	return b.String()
}

// codeSafe makes s safe inside `inline code`: escaped, and without the
// backticks and line breaks that would end it.
func codeSafe(s string) string {
	return escape(strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s))
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]+$`)

// actorText names an actor in mrkdwn.
func actorText(a oncall.Actor, kind string) string {
	if id, ok := a.SlackUser(); ok {
		if slackUserID.MatchString(id) {
			return "<@" + id + ">"
		}
		return escape(id)
	}
	switch a {
	case oncall.ActorSource:
		if name := sourceName(kind); name != "" {
			return "the source (" + escape(name) + ")"
		}
		return "the source"
	case oncall.ActorSystem:
		return "oncall"
	case "":
		return "someone"
	}
	return escape(string(a))
}

// sourceName is how people call an integration kind.
func sourceName(kind string) string {
	switch kind {
	case "alertmanager":
		return "Alertmanager"
	case "grafana":
		return "Grafana"
	case "webhook":
		return "Webhook"
	case "pagerduty":
		return "PagerDuty Events API"
	case "opsgenie":
		return "Opsgenie API"
	}
	return kind
}

func statusWord(s oncall.IncidentStatus) string {
	switch s {
	case oncall.StatusAcknowledged:
		return "Acknowledged"
	case oncall.StatusResolved:
		return "Resolved"
	}
	return "Triggered"
}

func severityName(s oncall.Severity) string {
	if s == "" {
		return "unknown"
	}
	return string(s)
}

func headerEmoji(inc oncall.Incident) string {
	if inc.Status == oncall.StatusResolved {
		return ":white_check_mark:"
	}
	switch inc.Severity {
	case oncall.SeverityCritical:
		return ":red_circle:"
	case oncall.SeverityError:
		return ":large_orange_circle:"
	case oncall.SeverityWarning:
		return ":large_yellow_circle:"
	case oncall.SeverityInfo:
		return ":large_blue_circle:"
	}
	return ":white_circle:"
}

func titleOf(inc oncall.Incident) string {
	if t := strings.Join(strings.Fields(inc.Title), " "); t != "" {
		return t
	}
	return "(no title)"
}

// safeURL returns u if Slack accepts it in a link or an image: absolute
// http(s), not too long, and nothing that ends a <link|text>.
func safeURL(u string) (string, bool) {
	parsed, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", false
	}
	s := strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E", " ", "%20").Replace(parsed.String())
	if len(s) > maxURL {
		return "", false
	}
	return s, true
}

// escape escapes the characters Slack's mrkdwn treats as control
// characters (https://docs.slack.dev/messaging/formatting-message-text).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate shortens s to at most n characters, ending in "…" when cut, and
// never in the middle of an escape (&amp;).
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-1])
	if amp := strings.LastIndexByte(cut, '&'); amp >= 0 && !strings.Contains(cut[amp:], ";") {
		cut = cut[:amp]
	}
	return cut + "…"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, true, false)
}

func markdown(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, false)
}

// messageHash identifies what a message shows, to skip updates that would
// change nothing.
func messageHash(text string, blocks []slack.Block) (string, error) {
	b, err := json.Marshal(struct {
		Text   string        `json:"text"`
		Blocks []slack.Block `json:"blocks"`
	}{text, blocks})
	if err != nil {
		return "", fmt.Errorf("encode message: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
