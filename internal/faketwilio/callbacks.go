package faketwilio

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sign computes X-Twilio-Signature as Twilio does for a POST: HMAC-SHA1,
// keyed with the auth token, over the full URL followed by every form
// parameter's name and value, sorted by name (values of one name sorted
// too), base64-encoded. It is written apart from integrations/twilio on
// purpose: a fake that shared the code it checks could not catch its bugs.
func Sign(authToken, rawURL string, form url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	for _, k := range slices.Sorted(maps.Keys(form)) {
		for _, v := range slices.Sorted(slices.Values(form[k])) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// CallbackError is a callback the application answered with a non-2xx
// status.
type CallbackError struct {
	URL    string
	Status int
	Body   []byte
}

func (e *CallbackError) Error() string {
	return fmt.Sprintf("callback %s answered %d: %s", e.URL, e.Status, bytes.TrimSpace(e.Body))
}

// post sends a signed form POST to the application as Twilio would, records
// it, and returns the answer's body; a non-2xx answer is a *CallbackError.
func (s *Server) post(ctx context.Context, target string, form url.Values) ([]byte, error) {
	sig := Sign(s.cfg.AuthToken, target, form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("build callback to %q: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sig)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	resp, err := s.client.Do(req)
	cb := Callback{URL: target, Form: form, Signature: sig}
	if err != nil {
		s.addCallback(cb)
		return nil, fmt.Errorf("callback to %q: %w", target, err)
	}
	cb.Body = drain(resp.Body)
	cb.Status = resp.StatusCode
	s.addCallback(cb)
	s.log.Debug("fake twilio callback", "url", target, "status", resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return cb.Body, &CallbackError{URL: target, Status: resp.StatusCode, Body: cb.Body}
	}
	return cb.Body, nil
}

func (s *Server) addCallback(cb Callback) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbacks = append(s.callbacks, cb)
}

// Deliver reports a message as delivered, or a call as answered and
// completed, by posting its status callback. Without a StatusCallback the
// status changes and nothing is posted.
func (s *Server) Deliver(ctx context.Context, sid string) error {
	if strings.HasPrefix(sid, "CA") {
		return s.endCall(ctx, sid, "completed")
	}
	return s.messageStatus(ctx, sid, "delivered", 0)
}

// Fail reports a message as undelivered with a Twilio error code (e.g.
// 30003 unreachable, 30006 landline), or a call as failed.
func (s *Server) Fail(ctx context.Context, sid string, code int) error {
	if strings.HasPrefix(sid, "CA") {
		return s.endCall(ctx, sid, "failed")
	}
	return s.messageStatus(ctx, sid, "undelivered", code)
}

// NoAnswer reports a call as not answered.
func (s *Server) NoAnswer(ctx context.Context, callSID string) error {
	return s.endCall(ctx, callSID, "no-answer")
}

func (s *Server) messageStatus(ctx context.Context, sid, status string, code int) error {
	now := s.cfg.Now().UTC()
	s.mu.Lock()
	i := slices.IndexFunc(s.messages, func(m *message) bool { return m.SID == sid })
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("no message %s", sid)
	}
	m := s.messages[i]
	m.Status, m.ErrorCode = status, code
	if m.Sent.IsZero() {
		m.Sent = now
	}
	target, snap := m.StatusCallback, m.Message
	s.mu.Unlock()
	if target == "" {
		return nil
	}
	form := url.Values{
		"AccountSid":    {s.cfg.AccountSID},
		"ApiVersion":    {"2010-04-01"},
		"From":          {snap.From},
		"MessageSid":    {snap.SID},
		"MessageStatus": {status},
		"SmsSid":        {snap.SID},
		"SmsStatus":     {status},
		"To":            {snap.To},
	}
	if code != 0 {
		form.Set("ErrorCode", strconv.Itoa(code))
	}
	_, err := s.post(ctx, target, form)
	return err
}

// callForm is the parameters Twilio sends with every request about a call.
func (s *Server) callForm(c Call, status string) url.Values {
	return url.Values{
		"AccountSid": {s.cfg.AccountSID},
		"ApiVersion": {"2010-04-01"},
		"CallSid":    {c.SID},
		"CallStatus": {status},
		"Called":     {c.To},
		"Caller":     {c.From},
		"Direction":  {"outbound-api"},
		"From":       {c.From},
		"To":         {c.To},
	}
}

// setCallStatus changes a call's status and returns a copy of it.
func (s *Server) setCallStatus(sid, status string) (Call, error) {
	now := s.cfg.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.calls, func(c *call) bool { return c.SID == sid })
	if i < 0 {
		return Call{}, fmt.Errorf("no call %s", sid)
	}
	c := s.calls[i]
	c.Status = status
	if status == "in-progress" && c.Started.IsZero() {
		c.Started = now
	}
	return c.Call, nil
}

func (s *Server) endCall(ctx context.Context, sid, status string) error {
	c, err := s.setCallStatus(sid, status)
	if err != nil {
		return err
	}
	if c.StatusCallback == "" {
		return nil
	}
	form := s.callForm(c, status)
	form.Set("CallbackSource", "call-progress-events")
	form.Set("Timestamp", s.cfg.Now().UTC().Format(time.RFC1123Z))
	if status == "completed" {
		form.Set("CallDuration", "0")
		form.Set("Duration", "0")
	}
	_, err = s.post(ctx, c.StatusCallback, form)
	return err
}

// ReplySMS posts an inbound message from a person (from) to one of the
// bot's numbers (to) to the SMS webhook, and returns the application's
// answer (TwiML).
func (s *Server) ReplySMS(ctx context.Context, from, to, body string) ([]byte, error) {
	now := s.cfg.Now().UTC()
	s.mu.Lock()
	target := s.smsWebhook
	if target == "" {
		s.mu.Unlock()
		return nil, errors.New("reply sms: no SMS webhook configured")
	}
	s.seq++
	m := &message{Message{
		SID:       fmt.Sprintf("SM%032x", s.seq),
		To:        to,
		From:      from,
		Body:      body,
		Direction: "inbound",
		Status:    "received",
		Created:   now,
		Sent:      now,
	}}
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	form := url.Values{
		"AccountSid":    {s.cfg.AccountSID},
		"ApiVersion":    {"2010-04-01"},
		"Body":          {body},
		"From":          {from},
		"MessageSid":    {m.SID},
		"NumMedia":      {"0"},
		"NumSegments":   {"1"},
		"SmsMessageSid": {m.SID},
		"SmsSid":        {m.SID},
		"SmsStatus":     {"received"},
		"To":            {to},
	}
	return s.post(ctx, target, form)
}

// Answered is what happened when a person picked up a call.
type Answered struct {
	// TwiML is the document the call's URL answered (or the inline TwiML).
	TwiML []byte
	// Action is the Gather action's URL and Response its answer to the
	// digits pressed.
	Action   string
	Response []byte
}

// Answer picks up a call: it posts the "answered" status callback if the
// call asked for it, fetches the call's TwiML (a signed request, as Twilio
// makes it), finds its <Gather>, and posts the digits to the Gather action.
func (s *Server) Answer(ctx context.Context, callSID, digits string) (*Answered, error) {
	c, err := s.setCallStatus(callSID, "in-progress")
	if err != nil {
		return nil, err
	}
	if c.StatusCallback != "" && slices.Contains(c.StatusCallbackEvents, "answered") {
		form := s.callForm(c, "in-progress")
		form.Set("CallbackSource", "call-progress-events")
		if _, err := s.post(ctx, c.StatusCallback, form); err != nil {
			return nil, fmt.Errorf("answer %s: %w", callSID, err)
		}
	}
	out := &Answered{TwiML: []byte(c.TwiML)}
	docURL := c.URL
	if c.TwiML == "" {
		if c.Method != http.MethodPost {
			return nil, fmt.Errorf("answer %s: TwiML method %s is not supported by the fake", callSID, c.Method)
		}
		if out.TwiML, err = s.post(ctx, c.URL, s.callForm(c, "in-progress")); err != nil {
			return out, fmt.Errorf("answer %s: fetch TwiML: %w", callSID, err)
		}
	}
	g, err := findGather(out.TwiML)
	if err != nil {
		return out, fmt.Errorf("answer %s: %w", callSID, err)
	}
	if g.Method != "" && !strings.EqualFold(g.Method, http.MethodPost) {
		return out, fmt.Errorf("answer %s: Gather method %s is not supported by the fake", callSID, g.Method)
	}
	out.Action = docURL
	if g.Action != "" {
		base, err := url.Parse(docURL)
		if err != nil {
			return out, fmt.Errorf("answer %s: parse TwiML URL: %w", callSID, err)
		}
		ref, err := url.Parse(g.Action)
		if err != nil {
			return out, fmt.Errorf("answer %s: parse Gather action %q: %w", callSID, g.Action, err)
		}
		out.Action = base.ResolveReference(ref).String()
	}
	if !absoluteURL(out.Action) {
		return out, fmt.Errorf("answer %s: Gather action %q is not an absolute URL", callSID, out.Action)
	}
	if g.NumDigits > 0 && len(digits) > g.NumDigits {
		digits = digits[:g.NumDigits]
	}
	form := s.callForm(c, "in-progress")
	form.Set("Digits", digits)
	form.Set("FinishedOnKey", "")
	if out.Response, err = s.post(ctx, out.Action, form); err != nil {
		return out, fmt.Errorf("answer %s: post digits: %w", callSID, err)
	}
	return out, nil
}

type gather struct {
	Action    string `xml:"action,attr"`
	Method    string `xml:"method,attr"`
	NumDigits int    `xml:"numDigits,attr"`
}

// findGather parses a TwiML document and returns its first <Gather>.
func findGather(twiml []byte) (gather, error) {
	var doc struct {
		XMLName xml.Name `xml:"Response"`
		Gathers []gather `xml:"Gather"`
	}
	if err := xml.Unmarshal(twiml, &doc); err != nil {
		return gather{}, fmt.Errorf("parse TwiML %q: %w", twiml, err)
	}
	if len(doc.Gathers) == 0 {
		return gather{}, fmt.Errorf("TwiML has no <Gather>: %s", twiml)
	}
	return doc.Gathers[0], nil
}
