// Package fakeslack is a Slack that runs in the test process. It speaks the
// Web API methods the bot calls and Socket Mode at the protocol level, so the
// real slack-go client (pointed at APIURL with slack.OptionAPIURL) and its
// socketmode client talk to it exactly as they talk to Slack.
//
// It is strict where Slack is strict in the calls the bot makes: wrong or
// missing tokens, missing arguments, unknown channels and messages, and
// Block Kit that breaks Slack's documented limits are answered with Slack's
// error codes. Everything it receives is recorded for tests to inspect, and
// fault hooks make it fail or rate-limit chosen calls.
package fakeslack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Identities the fake reports in auth.test and in the payloads it sends.
const (
	TeamID    = "T0FAKE"
	TeamName  = "Fake Workspace"
	AppID     = "A0FAKE"
	BotUserID = "U0BOT"
	BotID     = "B0BOT"
)

// Config tunes a Server. The zero value is usable.
type Config struct {
	// BotToken and AppToken are the tokens the fake accepts; defaults
	// "xoxb-test" and "xapp-test".
	BotToken string
	AppToken string
	// Channels, when set, are the only channels that exist; otherwise any
	// well-formed conversation id (C..., G..., D...) exists.
	Channels []string
	// PingInterval is how often the Socket Mode endpoint sends a WebSocket
	// ping (slack-go reconnects after 30s without one); default 5s.
	PingInterval time.Duration
	// AckTimeout is how long SendInteraction and friends wait for the
	// client's ack when their context has no deadline; default 10s.
	AckTimeout time.Duration
	// Logger receives what the fake does at debug level; default discards.
	Logger *slog.Logger
	// Users, when set, are the only users that exist for users.info, and
	// the ones users.lookupByEmail finds; otherwise any well-formed user
	// id is a user in UTC, and no email is found.
	Users []User
}

// Server is a running fake Slack. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	http     *http.Server
	base     string // http://127.0.0.1:port
	upgrader websocket.Upgrader

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change of state
	messages   []*Message    // in the order posted
	ephemerals []Ephemeral
	usergroups map[string][]string // members by user group id (usergroups.go)
	ui         uiState             // modals and response_urls (views.go)
	calls      []Call
	faults     map[string][]fault
	holds      map[string][]*hold // by method (HoldNext)
	lastTS     int64              // microseconds; every ts is unique and increasing
	conns      []*socketConn
	nextConn   int
	opens      int // apps.connections.open calls answered
	envelopes  map[string]*envelope
	waiters    map[string]chan Ack
	envSeq     int
	actionSeq  int
	closed     bool
	wg         sync.WaitGroup
}

// Call is one Web API request as the fake received it.
type Call struct {
	Method string
	// Params are the request's arguments, form fields and JSON members alike
	// (non-string JSON members as their JSON text); the token is removed.
	Params map[string]string
	// Error is the Slack error code answered, "" for ok:true; a fault
	// answered with an HTTP status shows as "http <status>".
	Error string
}

type fault struct {
	status     int
	retryAfter time.Duration
	slackError string
	channel    string // only for calls in this channel; "" for any
}

// hold is an answer held back until released (HoldNext).
type hold struct {
	channel  string // "" for any
	released chan struct{}
	once     sync.Once
}

func (h *hold) release() { h.once.Do(func() { close(h.released) }) }

// New starts a fake Slack on 127.0.0.1 at a free port. Close it when done.
func New(cfg Config) (*Server, error) {
	if cfg.BotToken == "" {
		cfg.BotToken = "xoxb-test"
	}
	if cfg.AppToken == "" {
		cfg.AppToken = "xapp-test"
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 5 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake slack: listen: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		base:      "http://" + ln.Addr().String(),
		changed:   make(chan struct{}),
		faults:    map[string][]fault{},
		holds:     map[string][]*hold{},
		envelopes: map[string]*envelope{},
		waiters:   map[string]chan Ack{},
		lastTS:    time.Now().UnixMicro(),
		// slack-go sends Origin: https://api.slack.com, as Slack expects.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("GET /socket", s.serveSocket)
	mux.HandleFunc("POST /commands/{n}", s.serveResponse)
	mux.HandleFunc("POST /actions/{n}", s.serveResponse)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Go(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake slack: serve", "err", err)
		}
	})
	return s, nil
}

// URL is the server's base URL, http://127.0.0.1:port.
func (s *Server) URL() string { return s.base }

// APIURL is the Web API base URL for slack.OptionAPIURL, ending in "/".
func (s *Server) APIURL() string { return s.base + "/api/" }

// BotToken is the bot token (xoxb-...) the fake accepts.
func (s *Server) BotToken() string { return s.cfg.BotToken }

// AppToken is the app-level token (xapp-...) the fake accepts.
func (s *Server) AppToken() string { return s.cfg.AppToken }

// Close closes every Socket Mode connection and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := slices.Clone(s.conns)
	for _, hs := range s.holds {
		for _, h := range hs {
			h.release()
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	s.wg.Wait()
}

// FailNext makes the next n calls of method answer with the HTTP status
// instead of doing anything. With status 429 and retryAfter > 0 the answer
// carries Retry-After in whole seconds (rounded up), as Slack's does.
func (s *Server) FailNext(method string, n int, status int, retryAfter time.Duration) {
	s.addFaults(method, n, fault{status: status, retryAfter: retryAfter})
}

// FailNextError makes the next n calls of method answer
// {"ok":false,"error":slackError} with HTTP 200 instead of doing anything.
func (s *Server) FailNextError(method string, n int, slackError string) {
	s.addFaults(method, n, fault{status: http.StatusOK, slackError: slackError})
}

// FailNextIn is FailNext for the calls of method in one channel (their
// channel argument) only: the calls elsewhere are answered as usual, so
// that a test can fail a direct message and not the channel's posts.
func (s *Server) FailNextIn(method, channel string, n int, status int, retryAfter time.Duration) {
	s.addFaults(method, n, fault{status: status, retryAfter: retryAfter, channel: channel})
}

func (s *Server) addFaults(method string, n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], f)
	}
}

// takeFault pops the next fault for a call of method with params. Callers
// hold s.mu.
func (s *Server) takeFault(method string, params map[string]string) (fault, bool) {
	q := s.faults[method]
	for i, f := range q {
		if f.channel == "" || f.channel == params["channel"] {
			s.faults[method] = slices.Delete(slices.Clone(q), i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

// HoldNext holds back the answer to the next call of method in channel
// (its channel argument; "" for any channel): the call is done and
// recorded as usual, and answered only once release is called, the client
// gives up or the server closes. That is a call in flight, as a client
// that dies before the answer arrives leaves it.
func (s *Server) HoldNext(method, channel string) (release func()) {
	h := &hold{channel: channel, released: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds[method] = append(s.holds[method], h)
	return h.release
}

// takeHold pops the next hold for a call of method with params. Callers
// hold s.mu.
func (s *Server) takeHold(method string, params map[string]string) *hold {
	q := s.holds[method]
	for i, h := range q {
		if h.channel == "" || h.channel == params["channel"] {
			s.holds[method] = slices.Delete(slices.Clone(q), i, i+1)
			return h
		}
	}
	return nil
}

// notify wakes WaitFor callers. Callers hold s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newTS returns a fresh message timestamp. Callers hold s.mu.
func (s *Server) newTS() string {
	now := time.Now().UnixMicro()
	s.lastTS = max(s.lastTS+1, now)
	return fmt.Sprintf("%d.%06d", s.lastTS/1e6, s.lastTS%1e6)
}

var conversationID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// channelExists says whether a conversation id names a channel. Callers
// hold s.mu.
func (s *Server) channelExists(id string) bool {
	if len(s.cfg.Channels) > 0 {
		return slices.Contains(s.cfg.Channels, id)
	}
	return conversationID.MatchString(id)
}

// writeSlack answers a Web API request the way Slack does: HTTP 200 and a
// JSON body with "ok".
func writeSlack(w http.ResponseWriter, body map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

func slackError(code string, messages ...string) map[string]any {
	body := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		body["response_metadata"] = map[string]any{"messages": messages}
	}
	return body
}

func writeFault(w http.ResponseWriter, f fault) {
	if f.slackError != "" {
		writeSlack(w, slackError(f.slackError))
		return
	}
	if f.status == http.StatusTooManyRequests && f.retryAfter > 0 {
		secs := int64(math.Ceil(f.retryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(f.status)
	if f.status == http.StatusTooManyRequests {
		_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		return
	}
	_, _ = w.Write([]byte(`{"ok":false,"error":"fatal_error"}`))
}

// bearer returns the token of "Authorization: Bearer <token>".
func bearer(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(token)
}
