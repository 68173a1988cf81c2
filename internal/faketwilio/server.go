// Package faketwilio is a Twilio that runs in the test process. It speaks the
// parts of Twilio's REST API the bot uses (Messages and Calls: create and
// list) at the protocol level, so the real twilio-go client, whose requests
// are sent to URL instead of https://api.twilio.com, talks to it exactly as it
// talks to Twilio.
//
// It is strict where Twilio is strict in those calls: wrong credentials get
// Twilio's 401, a malformed or missing number gets the documented error code.
// Everything it receives is recorded, and fault hooks make chosen requests
// fail. Test helpers play the people and the carriers on the other side:
// Deliver, Fail and NoAnswer post signed status callbacks, ReplySMS posts a
// signed inbound message, Answer picks up a call, fetches its TwiML and
// presses keys.
package faketwilio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for Config.
const (
	DefaultAccountSID = "AC00000000000000000000000000000001"
	DefaultAuthToken  = "0123456789abcdef0123456789abcdef"
)

// Resources that fault hooks apply to.
const (
	Messages = "Messages"
	Calls    = "Calls"
)

// Config tunes a Server. The zero value is usable.
type Config struct {
	// AccountSID and AuthToken are the credentials the fake accepts and
	// signs its callbacks with; defaults DefaultAccountSID, DefaultAuthToken.
	AccountSID string
	AuthToken  string
	// SMSWebhook is where ReplySMS posts inbound messages (the "A message
	// comes in" URL of the phone number). SetSMSWebhook changes it later.
	SMSWebhook string
	// Now is the fake's clock for date_created and friends; default time.Now.
	Now func() time.Time
	// Logger receives what the fake does at debug level; default discards.
	Logger *slog.Logger
}

// Server is a running fake Twilio. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	http   *http.Server
	base   string // http://127.0.0.1:port
	client *http.Client
	done   chan struct{} // closed by Close; releases hanging faults

	mu         sync.Mutex
	smsWebhook string
	seq        int
	messages   []*message // in the order created
	calls      []*call
	requests   []Request
	callbacks  []Callback
	faults     map[string][]Fault
	rejects    map[string]Fault // by phone number
	closed     bool
}

// Request is one REST API request as the fake received it.
type Request struct {
	Method string
	// Path is the URL path, e.g. /2010-04-01/Accounts/AC.../Messages.json.
	Path string
	// Resource is Messages or Calls; "" for any other path.
	Resource string
	// Query and Form are the URL query and the form body.
	Query url.Values
	Form  url.Values
	// User is the basic-auth user name ("" without basic auth).
	User string
	// Status is the HTTP status answered and Code the Twilio error code
	// (0 on success).
	Status int
	Code   int
}

// Callback is one request the fake made to the application: a status
// callback, an inbound message, a TwiML fetch or a Gather action.
type Callback struct {
	URL       string
	Form      url.Values
	Signature string
	// Status is the HTTP status the application answered (0 if the request
	// failed), Body its answer.
	Status int
	Body   []byte
}

// Fault is how a faulty request is answered.
type Fault struct {
	// Status is the HTTP status; Code, Message the Twilio error in the body
	// (Message defaults to the status text).
	Status  int
	Code    int
	Message string
	// RetryAfter, when set, is sent as a Retry-After header in seconds.
	RetryAfter time.Duration
	// Hang makes the fake answer nothing until the client gives up or the
	// server closes: a timeout as the client sees it.
	Hang bool
}

// New starts a fake Twilio on 127.0.0.1 at a free port. Close it when done.
func New(cfg Config) (*Server, error) {
	if cfg.AccountSID == "" {
		cfg.AccountSID = DefaultAccountSID
	}
	if cfg.AuthToken == "" {
		cfg.AuthToken = DefaultAuthToken
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for fake twilio: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        log,
		base:       "http://" + ln.Addr().String(),
		client:     &http.Client{Timeout: 10 * time.Second},
		done:       make(chan struct{}),
		smsWebhook: cfg.SMSWebhook,
		faults:     make(map[string][]Fault),
		rejects:    make(map[string]Fault),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/2010-04-01/Accounts/{account}/{resource}", s.serveAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.answerError(w, r, "", http.StatusNotFound, 20404,
			fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake twilio stopped", "err", err)
		}
	}()
	return s, nil
}

// URL is the base URL that replaces https://api.twilio.com.
func (s *Server) URL() string { return s.base }

// AccountSID and AuthToken are the credentials the fake accepts.
func (s *Server) AccountSID() string { return s.cfg.AccountSID }

// AuthToken is the token the fake accepts and signs callbacks with.
func (s *Server) AuthToken() string { return s.cfg.AuthToken }

// Close stops the server and releases hanging requests.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	_ = s.http.Close()
}

// SetSMSWebhook sets where ReplySMS posts inbound messages.
func (s *Server) SetSMSWebhook(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.smsWebhook = url
}

// FailNext makes the next n requests to resource (Messages or Calls, create
// and list alike) fail with the HTTP status and Twilio error code.
func (s *Server) FailNext(resource string, n int, status, code int) {
	s.FailNextWith(resource, n, Fault{Status: status, Code: code})
}

// FailNextWith is FailNext with every detail of the answer chosen.
func (s *Server) FailNextWith(resource string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[resource] = append(s.faults[resource], f)
	}
}

// RejectNumber makes every message and call to number fail as f would,
// e.g. Fault{Status: 400, Code: 21614} for a landline.
func (s *Server) RejectNumber(number string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[number] = f
}

// Requests returns the REST API requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Callbacks returns the requests the fake made to the application so far.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	resource, ok := strings.CutSuffix(r.PathValue("resource"), ".json")
	if !ok || (resource != Messages && resource != Calls) {
		s.answerError(w, r, "", http.StatusNotFound, 20404,
			fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.answerError(w, r, resource, http.StatusBadRequest, 20001, "Could not parse the request body")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.cfg.AccountSID || pass != s.cfg.AuthToken {
		s.answerError(w, r, resource, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.PathValue("account") != s.cfg.AccountSID {
		s.answerError(w, r, resource, http.StatusNotFound, 20404,
			fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
		return
	}
	if f, ok := s.takeFault(resource); ok {
		s.answerFault(w, r, resource, f)
		return
	}
	switch {
	case r.Method == http.MethodPost && resource == Messages:
		s.createMessage(w, r)
	case r.Method == http.MethodPost && resource == Calls:
		s.createCall(w, r)
	case r.Method == http.MethodGet && resource == Messages:
		s.listMessages(w, r)
	case r.Method == http.MethodGet && resource == Calls:
		s.listCalls(w, r)
	default:
		s.answerError(w, r, resource, http.StatusMethodNotAllowed, 20004, "Method not allowed")
	}
}

func (s *Server) takeFault(resource string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[resource]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[resource] = q[1:]
	return q[0], true
}

func (s *Server) answerFault(w http.ResponseWriter, r *http.Request, resource string, f Fault) {
	if f.Hang {
		s.record(r, resource, 0, 0)
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	s.answerError(w, r, resource, f.Status, f.Code, msg)
}

// answerError answers in Twilio's error format and records the request.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, resource string, status, code int, message string) {
	s.record(r, resource, status, code)
	body := map[string]any{
		"code":      code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	}
	if status == http.StatusUnauthorized {
		body["detail"] = "Your AccountSid or AuthToken was incorrect."
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	s.log.Debug("fake twilio error", "method", r.Method, "path", r.URL.Path, "status", status, "code", code)
	writeJSON(w, status, body)
}

func (s *Server) answerJSON(w http.ResponseWriter, r *http.Request, resource string, status int, body any) {
	s.record(r, resource, status, 0)
	writeJSON(w, status, body)
}

func (s *Server) record(r *http.Request, resource string, status, code int) {
	user, _, _ := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		Resource: resource,
		Query:    r.URL.Query(),
		Form:     r.PostForm,
		User:     user,
		Status:   status,
		Code:     code,
	})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// drain reads and closes a response body so the connection can be reused.
func drain(body io.ReadCloser) []byte {
	b, _ := io.ReadAll(io.LimitReader(body, 1<<20))
	_ = body.Close()
	return b
}
