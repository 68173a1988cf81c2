package twilio

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oncallbot/oncall"
)

// SMS length limits of a page. A page must arrive as one or two segments:
// split messages carry 153 GSM-7 septets a segment (306 for two, of which
// we use 300) or, when any character is outside GSM-7, 67 UTF-16 units.
const (
	maxSMSSeptets = 300
	maxSMSUnits   = 2 * 67
	// maxSpokenTitle bounds the title a call reads out; inline TwiML is
	// limited to 4,000 characters and nobody listens to more.
	maxSpokenTitle = 200
)

// Pager pages people by SMS and by voice call through Twilio: the sender of
// the delivery worker for the sms and call channels.
type Pager struct {
	client    *Client
	from      string
	publicURL string
	log       *slog.Logger
	// warnNoKeys logs once that calls cannot take key presses.
	warnNoKeys sync.Once
}

// NewPager returns a Pager sending from the number from. publicURL is where
// Twilio reaches the bot's Inbound routes (ONCALL_PUBLIC_URL); without it
// there are no status callbacks, and calls only read the incident out.
func NewPager(c *Client, from, publicURL string, log *slog.Logger) *Pager {
	if log == nil {
		log = slog.Default()
	}
	return &Pager{client: c, from: from, publicURL: strings.TrimSuffix(publicURL, "/"), log: log}
}

// RetryError is a page Twilio refused for now and said when to try again
// (429 or 503 with Retry-After).
type RetryError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("%v (retry in %s)", e.Err, e.Delay) }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryDelay is how long Twilio asked to wait.
func (e *RetryError) RetryDelay() time.Duration { return e.Delay }

// Send sends the SMS or places the call of page and returns its SID. Errors
// wrap oncall.ErrPermanent when trying again cannot help, are a
// *RetryError when Twilio said when to retry, and are transient otherwise.
func (p *Pager) Send(ctx context.Context, page oncall.Page) (string, error) {
	what := fmt.Sprintf("page %s by %s", page.Delivery.Person, page.Delivery.Channel)
	if err := checkPage(page); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	var sid string
	var err error
	if page.Delivery.Channel == oncall.NotifySMS {
		sid, err = p.client.SendSMS(ctx, page.Phone, p.from, smsBody(page.Incident), p.statusURL(page.Delivery.ID))
	} else {
		sid, err = p.call(ctx, page)
	}
	if err != nil {
		return "", classified(what, err)
	}
	return sid, nil
}

func (p *Pager) call(ctx context.Context, page oncall.Page) (string, error) {
	if p.publicURL == "" {
		p.warnNoKeys.Do(func() {
			p.log.Warn("paging calls only read the incident out: pressing a key to acknowledge needs ONCALL_PUBLIC_URL, the address Twilio reaches this server at")
		})
		return p.client.CallTwiML(ctx, page.Phone, p.from, string(Say(callSummary(page.Incident))), "")
	}
	twimlURL := p.publicURL + "/twilio/voice?" + voiceQuery(page.Incident.ID, page.Delivery.ID)
	return p.client.Call(ctx, page.Phone, p.from, twimlURL, p.statusURL(page.Delivery.ID))
}

// Find returns the newest SMS of page's incident, or the newest call, sent
// from our number to page's phone at or after since. A call cannot be told
// apart by incident: Twilio's call records do not say what they played.
func (p *Pager) Find(ctx context.Context, page oncall.Page, since time.Time) (string, bool, error) {
	what := fmt.Sprintf("find the page of %s by %s", page.Delivery.Person, page.Delivery.Channel)
	if err := checkPage(page); err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	// Twilio's records carry whole seconds and its clock is not ours:
	// look a little before since rather than miss the page by a second.
	// The worker refuses a match already recorded for another page.
	since = since.Truncate(time.Second).Add(-findLead)
	if page.Delivery.Channel == oncall.NotifySMS {
		msgs, err := p.client.FindMessages(ctx, page.Phone, since)
		if err != nil {
			return "", false, classified(what, err)
		}
		prefix := smsPrefix(page.Incident.ID)
		for _, m := range msgs { // newest first
			if m.From == p.from && strings.HasPrefix(m.Body, prefix) {
				return m.SID, true, nil
			}
		}
		return "", false, nil
	}
	calls, err := p.client.FindCalls(ctx, page.Phone, since)
	if err != nil {
		return "", false, classified(what, err)
	}
	for _, c := range calls {
		if c.From == p.from {
			return c.SID, true, nil
		}
	}
	return "", false, nil
}

// findLead is how far before the attempt's start Find looks.
const findLead = 30 * time.Second

// checkPage refuses, for good, a page this sender cannot make.
func checkPage(page oncall.Page) error {
	switch {
	case page.Delivery.Channel != oncall.NotifySMS && page.Delivery.Channel != oncall.NotifyCall:
		return fmt.Errorf("%w: twilio cannot page by %q", oncall.ErrPermanent, page.Delivery.Channel)
	case page.Phone == "":
		return fmt.Errorf("%w: no phone number for %s", oncall.ErrPermanent, page.Delivery.Person)
	}
	return nil
}

// classified wraps a Twilio error as the delivery worker tells them apart.
func classified(what string, err error) error {
	permanent, retryAfter := Classify(err)
	switch {
	case permanent:
		return fmt.Errorf("%s: %w: %w", what, oncall.ErrPermanent, err)
	case retryAfter > 0:
		return &RetryError{Delay: retryAfter, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (p *Pager) statusURL(deliveryID int64) string {
	if p.publicURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/twilio/status?delivery=%d", p.publicURL, deliveryID)
}

// voiceQuery is the query of a call's TwiML and Gather URLs.
func voiceQuery(incidentID, deliveryID int64) string {
	return fmt.Sprintf("incident=%d&delivery=%d", incidentID, deliveryID)
}

// smsPrefix starts every page of an incident, which is how Find tells the
// pages of different incidents apart.
func smsPrefix(incidentID int64) string { return fmt.Sprintf("[oncall] #%d ", incidentID) }

// smsBody is the page of an incident by SMS:
//
//	[oncall] #12 CRITICAL: Disk full on db1. Reply A12 to acknowledge, R12 to resolve.
//
// The title is shortened (ending in an ellipsis) so the whole fits two SMS
// segments; the reply codes are never cut.
func smsBody(inc oncall.Incident) string {
	head := smsPrefix(inc.ID)
	if inc.Severity != "" {
		head += strings.ToUpper(string(inc.Severity)) + ": "
	}
	reply := fmt.Sprintf(" Reply A%d to acknowledge, R%d to resolve.", inc.ID, inc.ID)
	title := oneLine(inc.Title)
	if title == "" {
		title = "(no title)"
	}

	whole := head + title + "." + reply
	gsm := isGSM7(whole)
	limit, ellipsis := maxSMSSeptets, "..."
	if !gsm {
		limit, ellipsis = maxSMSUnits, "…"
	}
	if smsLen(whole, gsm) <= limit {
		return whole
	}
	// The ellipsis ends the shortened title's sentence.
	budget := limit - smsLen(head+ellipsis+reply, gsm)
	used, end := 0, 0
	for i, r := range title {
		if used += smsLen(string(r), gsm); used > budget {
			break
		}
		end = i + utf8.RuneLen(r)
	}
	return head + strings.TrimSpace(title[:end]) + ellipsis + reply
}

// callSummary is what a paging call says before asking for a key.
func callSummary(inc oncall.Incident) string {
	title := firstRunes(oneLine(inc.Title), maxSpokenTitle)
	if inc.Severity == "" {
		return fmt.Sprintf("This is oncall. Incident %d: %s.", inc.ID, title)
	}
	return fmt.Sprintf("This is oncall. Incident %d, %s: %s.", inc.ID, inc.Severity, title)
}

// oneLine collapses a title's white space (alerts bring newlines and tabs)
// and drops its final full stop: the page adds its own.
func oneLine(s string) string {
	return strings.TrimRight(strings.Join(strings.Fields(s), " "), ".")
}

// firstRunes returns the first n runes of s.
func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// GSM 03.38 default alphabet and the extension characters that take two
// septets (escape + character).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Extension = "\f^{}\\[~]|€"
)

func isGSM7(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(gsm7Basic, r) && !strings.ContainsRune(gsm7Extension, r) {
			return false
		}
	}
	return true
}

// smsLen is the length of s in GSM-7 septets or, when gsm is false, in
// UTF-16 code units (UCS-2 segments count those).
func smsLen(s string, gsm bool) int {
	n := 0
	for _, r := range s {
		switch {
		case gsm && strings.ContainsRune(gsm7Extension, r):
			n += 2
		case !gsm && r > 0xFFFF:
			n += 2
		default:
			n++
		}
	}
	return n
}
