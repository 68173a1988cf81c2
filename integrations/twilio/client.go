// Package twilio is the bot's edge to Twilio: sending SMS and placing voice
// calls with the twilio-go client, finding what was already sent (to
// reconcile after a crash), classifying failures for the retry logic,
// verifying the signature of Twilio's inbound requests, and building the
// TwiML a call plays.
package twilio

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

const (
	defaultTimeout = 10 * time.Second
	// listPageSize and maxListPages bound a reconciliation lookup.
	listPageSize = 100
	maxListPages = 20
)

// callEvents are the call progress events a call's status callback gets.
var callEvents = []string{"initiated", "ringing", "answered", "completed"}

// Client sends SMS and places calls through Twilio's REST API.
// It is safe for concurrent use.
type Client struct {
	accountSID string
	authToken  string
	apiURL     *url.URL // nil: https://api.twilio.com
	transport  http.RoundTripper
	timeout    time.Duration
}

// Message is a Message resource as reconciliation sees it.
type Message struct {
	SID, To, From, Body string
	Status              string // queued, sending, sent, delivered, undelivered, failed, ...
	ErrorCode           int
	Created             time.Time
}

// Call is a Call resource as reconciliation sees it.
type Call struct {
	SID, To, From string
	Status        string // queued, ringing, in-progress, completed, busy, failed, no-answer, canceled
	Created       time.Time
}

// NewClient returns a client for the account. apiURL, when not empty,
// replaces https://api.twilio.com (TWILIO_API_URL: a proxy, or the fake in
// tests); twilio-go has no such option, so the client's transport sends
// every request for api.twilio.com there instead. httpClient provides the
// transport and the timeout of each method call, all its pages included
// (default 10s); nil means http.DefaultTransport. Its CheckRedirect and Jar
// are not used: like twilio-go, the client never follows redirects.
//
// twilio-go builds its requests with context.Background, so each method
// call makes its own twilio-go API service whose transport gives the
// requests the caller's context and keeps the last response's status and
// Retry-After, which twilio-go's errors do not carry.
func NewClient(accountSID, authToken, apiURL string, httpClient *http.Client) (*Client, error) {
	if accountSID == "" || authToken == "" {
		return nil, fmt.Errorf("new twilio client: account SID and auth token are required")
	}
	c := &Client{
		accountSID: accountSID,
		authToken:  authToken,
		transport:  http.DefaultTransport,
		timeout:    defaultTimeout,
	}
	if apiURL != "" {
		u, err := url.Parse(apiURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("new twilio client: API URL %q is not an absolute http(s) URL", apiURL)
		}
		c.apiURL = u
	}
	if httpClient != nil {
		if httpClient.Transport != nil {
			c.transport = httpClient.Transport
		}
		if httpClient.Timeout > 0 {
			c.timeout = httpClient.Timeout
		}
	}
	return c, nil
}

// SendSMS sends body to the number to from the number from; Twilio posts the
// message's status to statusCallback when it is not empty. It returns the
// message SID.
func (c *Client) SendSMS(ctx context.Context, to, from, body, statusCallback string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	api, last := c.api(ctx)
	params := (&openapi.CreateMessageParams{}).SetTo(to).SetFrom(from).SetBody(body)
	if statusCallback != "" {
		params.SetStatusCallback(statusCallback)
	}
	m, err := api.CreateMessage(params)
	if err != nil {
		return "", newError("send sms", last, err)
	}
	if m.Sid == nil || *m.Sid == "" {
		return "", &Error{Op: "send sms", Status: last.status, Message: "answer has no message sid"}
	}
	return *m.Sid, nil
}

// Call places a voice call to the number to from the number from; Twilio
// fetches the call's TwiML from twimlURL with a POST once it is answered,
// and posts its progress (initiated, ringing, answered, completed) to
// statusCallback when that is not empty. It returns the call SID.
func (c *Client) Call(ctx context.Context, to, from, twimlURL, statusCallback string) (string, error) {
	return c.createCall(ctx, (&openapi.CreateCallParams{}).SetUrl(twimlURL).SetMethod(http.MethodPost), to, from, statusCallback)
}

// CallTwiML places a voice call that plays twiml, given inline rather than
// fetched: for when Twilio cannot reach the bot. Twilio takes at most 4,000
// characters of it. Otherwise as Call.
func (c *Client) CallTwiML(ctx context.Context, to, from, twiml, statusCallback string) (string, error) {
	return c.createCall(ctx, (&openapi.CreateCallParams{}).SetTwiml(twiml), to, from, statusCallback)
}

func (c *Client) createCall(ctx context.Context, params *openapi.CreateCallParams, to, from, statusCallback string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	api, last := c.api(ctx)
	params.SetTo(to).SetFrom(from)
	if statusCallback != "" {
		params.SetStatusCallback(statusCallback).
			SetStatusCallbackMethod(http.MethodPost).
			SetStatusCallbackEvent(callEvents)
	}
	call, err := api.CreateCall(params)
	if err != nil {
		return "", newError("create call", last, err)
	}
	if call.Sid == nil || *call.Sid == "" {
		return "", &Error{Op: "create call", Status: last.status, Message: "answer has no call sid"}
	}
	return *call.Sid, nil
}

// FindMessages returns the messages sent to the number to that were created
// at or after since, newest first.
//
// It filters by To and compares date_created itself rather than asking for
// DateSent>: a message still queued has no date_sent yet, and reconciliation
// is exactly about messages sent a moment before a crash. Twilio lists
// newest first, so paging stops at the first page reaching past since (and
// after maxListPages pages at most).
func (c *Client) FindMessages(ctx context.Context, to string, since time.Time) ([]Message, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	api, last := c.api(ctx)
	params := (&openapi.ListMessageParams{}).SetTo(to).SetPageSize(listPageSize)
	out, err := listSince(since, func(token, page string) ([]openapi.ApiV2010Message, *string, error) {
		resp, err := api.PageMessage(params, token, page)
		if err != nil {
			return nil, nil, err
		}
		return resp.Messages, resp.NextPageUri, nil
	}, func(m openapi.ApiV2010Message, created time.Time) Message {
		return Message{
			SID: deref(m.Sid), To: deref(m.To), From: deref(m.From), Body: deref(m.Body),
			Status: deref(m.Status), ErrorCode: derefInt(m.ErrorCode), Created: created,
		}
	}, func(m openapi.ApiV2010Message) *string { return m.DateCreated })
	if err != nil {
		return nil, newError("list messages", last, err)
	}
	return out, nil
}

// FindCalls returns the calls placed to the number to that were created at
// or after since, newest first; see FindMessages for how.
func (c *Client) FindCalls(ctx context.Context, to string, since time.Time) ([]Call, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	api, last := c.api(ctx)
	params := (&openapi.ListCallParams{}).SetTo(to).SetPageSize(listPageSize)
	out, err := listSince(since, func(token, page string) ([]openapi.ApiV2010Call, *string, error) {
		resp, err := api.PageCall(params, token, page)
		if err != nil {
			return nil, nil, err
		}
		return resp.Calls, resp.NextPageUri, nil
	}, func(call openapi.ApiV2010Call, created time.Time) Call {
		return Call{SID: deref(call.Sid), To: deref(call.To), From: deref(call.From), Status: deref(call.Status), Created: created}
	}, func(call openapi.ApiV2010Call) *string { return call.DateCreated })
	if err != nil {
		return nil, newError("list calls", last, err)
	}
	return out, nil
}

// listSince pages through a Twilio list (newest first) and converts the
// records created at or after since; it stops at the first page that
// reaches past since, and after maxListPages pages at most. Undated
// records are left out: nothing says they are ours, and paging again is
// preferred over staying silent.
func listSince[R, T any](since time.Time, fetch func(token, page string) ([]R, *string, error),
	convert func(R, time.Time) T, dateCreated func(R) *string) ([]T, error) {
	var out []T
	token, page := "", ""
	for range maxListPages {
		records, next, err := fetch(token, page)
		if err != nil {
			return nil, err
		}
		past := false
		for _, r := range records {
			created, ok := parseTime(dateCreated(r))
			if !ok {
				continue
			}
			if created.Before(since) {
				past = true
				continue
			}
			out = append(out, convert(r, created))
		}
		if past {
			break
		}
		var more bool
		if token, page, more = nextPage(next); !more {
			break
		}
	}
	return out, nil
}

// api returns a twilio-go API service whose requests carry ctx, go to the
// configured API URL, and leave their last response in the returned record.
// It is cheap: twilio-go's services are plain structs.
func (c *Client) api(ctx context.Context) (*openapi.ApiService, *lastResponse) {
	last := &lastResponse{}
	tc := &client.Client{
		Credentials: client.NewCredentials(c.accountSID, c.authToken),
		HTTPClient: &http.Client{
			Transport: &transport{ctx: ctx, base: c.transport, apiURL: c.apiURL, last: last},
			// As twilio-go's default client: never follow redirects.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	tc.SetAccountSid(c.accountSID)
	return openapi.NewApiServiceWithClient(tc), last
}

// lastResponse is the status and headers of the last response of one call,
// which twilio-go does not pass on with its errors (Retry-After above all).
type lastResponse struct {
	status int
	header http.Header
}

// transport gives twilio-go's requests the caller's context (twilio-go
// builds them with context.Background) and sends those for Twilio's API host
// to apiURL.
type transport struct {
	ctx    context.Context
	base   http.RoundTripper
	apiURL *url.URL
	last   *lastResponse
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(t.ctx)
	if t.apiURL != nil && twilioAPIHost(out.URL.Hostname()) {
		out.URL.Scheme = t.apiURL.Scheme
		out.URL.Host = t.apiURL.Host
		out.URL.Path = strings.TrimSuffix(t.apiURL.Path, "/") + out.URL.Path
		out.URL.RawPath = ""
		out.Host = ""
	}
	*t.last = lastResponse{}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	*t.last = lastResponse{status: resp.StatusCode, header: resp.Header}
	return resp, nil
}

// twilioAPIHost reports whether host is the API host twilio-go builds,
// api.twilio.com or, with TWILIO_EDGE/TWILIO_REGION, api.edge.region.twilio.com.
func twilioAPIHost(host string) bool {
	return host == "api.twilio.com" || strings.HasPrefix(host, "api.") && strings.HasSuffix(host, ".twilio.com")
}

// nextPage returns the PageToken and Page of a list's next_page_uri.
func nextPage(uri *string) (token, page string, ok bool) {
	if uri == nil || *uri == "" {
		return "", "", false
	}
	u, err := url.Parse(*uri)
	if err != nil {
		return "", "", false
	}
	q := u.Query()
	return q.Get("PageToken"), q.Get("Page"), q.Get("PageToken") != "" || q.Get("Page") != ""
}

// parseTime parses Twilio's JSON dates (RFC 1123 with a numeric zone).
func parseTime(s *string) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, time.RFC3339} {
		if t, err := time.Parse(layout, *s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(i *int) int {
	if i == nil {
		return 0
	}
	return *i
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
