package faketwilio

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Message is a Message resource as the fake holds it.
type Message struct {
	SID            string
	To, From, Body string
	// Direction is outbound-api for messages sent through the API, inbound
	// for ReplySMS.
	Direction      string
	Status         string // queued, sent, delivered, failed, undelivered, received
	ErrorCode      int
	StatusCallback string
	Created        time.Time
	Sent           time.Time // zero while queued
}

// Call is a Call resource as the fake holds it.
type Call struct {
	SID                  string
	To, From             string
	URL, Method          string // where the TwiML is fetched from
	TwiML                string // inline TwiML instead of URL
	Status               string // queued, in-progress, completed, failed, no-answer, busy
	StatusCallback       string
	StatusCallbackEvents []string
	Created              time.Time
	Started              time.Time // zero until answered
}

type message struct{ Message }
type call struct{ Call }

// Messages returns every message, in the order created.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.Message
	}
	return out
}

// Calls returns every call, in the order created.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.Call
	}
	return out
}

// e164 is what Twilio accepts as a phone number in To and From.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// validateNumbers answers Twilio's errors for missing or malformed numbers
// and for numbers set up with RejectNumber; it reports whether it answered.
func (s *Server) validateNumbers(w http.ResponseWriter, r *http.Request, resource string) bool {
	to, from := r.PostForm.Get("To"), r.PostForm.Get("From")
	switch {
	case to == "":
		s.answerError(w, r, resource, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	case !e164.MatchString(to):
		s.answerError(w, r, resource, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
	case from == "":
		s.answerError(w, r, resource, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
	case !e164.MatchString(from):
		s.answerError(w, r, resource, http.StatusBadRequest, 21212, fmt.Sprintf("Invalid 'From' Phone Number: %s", from))
	default:
		s.mu.Lock()
		f, rejected := s.rejects[to]
		s.mu.Unlock()
		if !rejected {
			return false
		}
		s.answerFault(w, r, resource, f)
	}
	return true
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	if s.validateNumbers(w, r, Messages) {
		return
	}
	body := r.PostForm.Get("Body")
	if body == "" {
		s.answerError(w, r, Messages, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	now := s.cfg.Now().UTC()
	s.mu.Lock()
	s.seq++
	m := &message{Message{
		SID:            fmt.Sprintf("SM%032x", s.seq),
		To:             r.PostForm.Get("To"),
		From:           r.PostForm.Get("From"),
		Body:           body,
		Direction:      "outbound-api",
		Status:         "queued",
		StatusCallback: r.PostForm.Get("StatusCallback"),
		Created:        now,
	}}
	s.messages = append(s.messages, m)
	out := s.messageJSON(m)
	s.mu.Unlock()
	s.answerJSON(w, r, Messages, http.StatusCreated, out)
}

func (s *Server) createCall(w http.ResponseWriter, r *http.Request) {
	if s.validateNumbers(w, r, Calls) {
		return
	}
	f := r.PostForm
	if f.Get("Url") == "" && f.Get("Twiml") == "" && f.Get("ApplicationSid") == "" {
		s.answerError(w, r, Calls, http.StatusBadRequest, 21205, "Url parameter is required.")
		return
	}
	if u := f.Get("Url"); u != "" && !absoluteURL(u) {
		s.answerError(w, r, Calls, http.StatusBadRequest, 21205, fmt.Sprintf("Url is not a valid URL: %s", u))
		return
	}
	method := strings.ToUpper(f.Get("Method"))
	if method == "" {
		method = http.MethodPost
	}
	now := s.cfg.Now().UTC()
	s.mu.Lock()
	s.seq++
	c := &call{Call{
		SID:                  fmt.Sprintf("CA%032x", s.seq),
		To:                   f.Get("To"),
		From:                 f.Get("From"),
		URL:                  f.Get("Url"),
		Method:               method,
		TwiML:                f.Get("Twiml"),
		Status:               "queued",
		StatusCallback:       f.Get("StatusCallback"),
		StatusCallbackEvents: f["StatusCallbackEvent"],
		Created:              now,
	}}
	s.calls = append(s.calls, c)
	out := s.callJSON(c)
	s.mu.Unlock()
	s.answerJSON(w, r, Calls, http.StatusCreated, out)
}

func absoluteURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// listFilter is the subset of Twilio's list filters the fake understands:
// To, From, and a date field on, before (<) or after (>, meaning on or
// after) a date given as YYYY-MM-DD or RFC 3339.
type listFilter struct {
	to, from       string
	on             time.Time // whole UTC day when date-only
	onDay          bool
	before, after  time.Time
	hasBefore      bool
	hasAfter       bool
	page, pageSize int
}

func parseListFilter(q url.Values, dateField string) (listFilter, error) {
	f := listFilter{to: q.Get("To"), from: q.Get("From"), pageSize: 50}
	var err error
	if v := q.Get(dateField); v != "" {
		if f.on, f.onDay, err = parseDate(v); err != nil {
			return f, fmt.Errorf("%s: %w", dateField, err)
		}
	}
	if v := q.Get(dateField + "<"); v != "" {
		if f.before, _, err = parseDate(v); err != nil {
			return f, fmt.Errorf("%s<: %w", dateField, err)
		}
		f.hasBefore = true
	}
	if v := q.Get(dateField + ">"); v != "" {
		if f.after, _, err = parseDate(v); err != nil {
			return f, fmt.Errorf("%s>: %w", dateField, err)
		}
		f.hasAfter = true
	}
	if v := q.Get("PageSize"); v != "" {
		if f.pageSize, err = strconv.Atoi(v); err != nil || f.pageSize < 1 || f.pageSize > 1000 {
			return f, fmt.Errorf("PageSize %q must be 1 to 1000", v)
		}
	}
	if v := q.Get("Page"); v != "" {
		if f.page, err = strconv.Atoi(v); err != nil || f.page < 0 {
			return f, fmt.Errorf("Page %q must be a number from 0", v)
		}
	}
	return f, nil
}

func parseDate(v string) (t time.Time, dayOnly bool, err error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339, v)
	if err != nil {
		return t, false, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", v)
	}
	return t, false, nil
}

// match reports whether a record with these numbers and date passes; a
// zero date (not sent, not started) never passes a date filter.
func (f listFilter) match(to, from string, date time.Time) bool {
	if (f.to != "" && f.to != to) || (f.from != "" && f.from != from) {
		return false
	}
	dated := !f.on.IsZero() || f.hasBefore || f.hasAfter
	if dated && date.IsZero() {
		return false
	}
	if !f.on.IsZero() {
		if f.onDay && !sameDay(date, f.on) || !f.onDay && !date.Equal(f.on) {
			return false
		}
	}
	if f.hasBefore && date.After(f.before) {
		return false
	}
	if f.hasAfter && date.Before(f.after) {
		return false
	}
	return true
}

func sameDay(a, b time.Time) bool {
	a, b = a.UTC(), b.UTC()
	return a.Year() == b.Year() && a.YearDay() == b.YearDay()
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFilter(r.URL.Query(), "DateSent")
	if err != nil {
		s.answerError(w, r, Messages, http.StatusBadRequest, 20001, err.Error())
		return
	}
	s.mu.Lock()
	var all []map[string]any
	for _, m := range slices.Backward(s.messages) { // newest first, as Twilio lists
		if f.match(m.To, m.From, m.Sent) {
			all = append(all, s.messageJSON(m))
		}
	}
	s.mu.Unlock()
	s.answerJSON(w, r, Messages, http.StatusOK, s.page(r, "messages", all, f))
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFilter(r.URL.Query(), "StartTime")
	if err != nil {
		s.answerError(w, r, Calls, http.StatusBadRequest, 20001, err.Error())
		return
	}
	s.mu.Lock()
	var all []map[string]any
	for _, c := range slices.Backward(s.calls) {
		if f.match(c.To, c.From, c.Started) {
			all = append(all, s.callJSON(c))
		}
	}
	s.mu.Unlock()
	s.answerJSON(w, r, Calls, http.StatusOK, s.page(r, "calls", all, f))
}

// page cuts one page out of records and wraps it in Twilio's list envelope,
// with next_page_uri carrying the same filters.
func (s *Server) page(r *http.Request, key string, records []map[string]any, f listFilter) map[string]any {
	start := min(f.page*f.pageSize, len(records))
	end := min(start+f.pageSize, len(records))
	pageURI := func(page int) string {
		q := r.URL.Query()
		q.Del("PageToken")
		q.Set("Page", strconv.Itoa(page))
		q.Set("PageSize", strconv.Itoa(f.pageSize))
		if page > 0 {
			q.Set("PageToken", fmt.Sprintf("PA%d", page))
		}
		return r.URL.Path + "?" + q.Encode()
	}
	var next, prev any
	if end < len(records) {
		next = pageURI(f.page + 1)
	}
	if f.page > 0 {
		prev = pageURI(f.page - 1)
	}
	items := records[start:end]
	if items == nil {
		items = []map[string]any{}
	}
	return map[string]any{
		key:                 items,
		"end":               max(end-1, 0),
		"first_page_uri":    pageURI(0),
		"next_page_uri":     next,
		"previous_page_uri": prev,
		"page":              f.page,
		"page_size":         f.pageSize,
		"start":             start,
		"uri":               r.URL.RequestURI(),
	}
}

// twilioTime formats as Twilio does in JSON: RFC 1123 with a numeric zone.
func twilioTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC1123Z)
}

func nullable[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// messageJSON is a message as Twilio answers it. Call with s.mu held.
func (s *Server) messageJSON(m *message) map[string]any {
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s.json", s.cfg.AccountSID, m.SID)
	var errMsg any
	if m.ErrorCode != 0 {
		errMsg = "Message delivery failed"
	}
	updated := m.Created
	if m.Sent.After(updated) {
		updated = m.Sent
	}
	return map[string]any{
		"account_sid":           s.cfg.AccountSID,
		"api_version":           "2010-04-01",
		"body":                  m.Body,
		"date_created":          twilioTime(m.Created),
		"date_sent":             twilioTime(m.Sent),
		"date_updated":          twilioTime(updated),
		"direction":             m.Direction,
		"error_code":            nullable(m.ErrorCode),
		"error_message":         errMsg,
		"from":                  m.From,
		"messaging_service_sid": nil,
		"num_media":             "0",
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   m.SID,
		"status":                m.Status,
		"subresource_uris":      map[string]any{"media": strings.TrimSuffix(uri, ".json") + "/Media.json"},
		"to":                    m.To,
		"uri":                   uri,
	}
}

// callJSON is a call as Twilio answers it. Call with s.mu held.
func (s *Server) callJSON(c *call) map[string]any {
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Calls/%s.json", s.cfg.AccountSID, c.SID)
	return map[string]any{
		"account_sid":      s.cfg.AccountSID,
		"annotation":       nil,
		"answered_by":      nil,
		"api_version":      "2010-04-01",
		"caller_name":      nil,
		"date_created":     twilioTime(c.Created),
		"date_updated":     twilioTime(c.Created),
		"direction":        "outbound-api",
		"duration":         nil,
		"end_time":         nil,
		"forwarded_from":   nil,
		"from":             c.From,
		"from_formatted":   c.From,
		"group_sid":        nil,
		"parent_call_sid":  nil,
		"phone_number_sid": nil,
		"price":            nil,
		"price_unit":       "USD",
		"sid":              c.SID,
		"start_time":       twilioTime(c.Started),
		"status":           c.Status,
		"subresource_uris": map[string]any{"notifications": strings.TrimSuffix(uri, ".json") + "/Notifications.json"},
		"to":               c.To,
		"to_formatted":     c.To,
		"trunk_sid":        nil,
		"uri":              uri,
		"queue_time":       "0",
	}
}
