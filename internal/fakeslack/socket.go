package fakeslack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Ack is a client's acknowledgement of an envelope.
type Ack struct {
	EnvelopeID string
	// Payload is the ack's payload (e.g. a slash command's answer), nil if
	// the ack had none.
	Payload json.RawMessage
	// Elapsed is the time from sending the envelope to receiving the ack,
	// for the record (Slack retries after 3s).
	Elapsed time.Duration
	// ResponseURL is the response_url the envelope carried (slash commands
	// and clicks), to find the bot's answers in State.Responses.
	ResponseURL string
}

// envelope is a Socket Mode request as sent, kept for redelivery.
type envelope struct {
	ID                     string
	Type                   string
	Payload                json.RawMessage
	AcceptsResponsePayload bool
	RetryAttempt           int
}

func (e *envelope) wire(retryReason string) map[string]any {
	return map[string]any{
		"envelope_id":              e.ID,
		"type":                     e.Type,
		"payload":                  e.Payload,
		"accepts_response_payload": e.AcceptsResponsePayload,
		"retry_attempt":            e.RetryAttempt,
		"retry_reason":             retryReason,
	}
}

// socketConn is one Socket Mode WebSocket connection.
type socketConn struct {
	ws        *websocket.Conn
	writeMu   sync.Mutex
	done      chan struct{}
	closeOnce sync.Once
}

func (c *socketConn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *socketConn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		_ = c.ws.Close()
	})
}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	c := &socketConn{ws: ws, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns = append(s.conns, c)
	n := len(s.conns)
	s.wg.Go(func() { s.ping(c) }) // under s.mu: Close cannot be waiting yet
	s.notify()
	s.mu.Unlock()
	s.log.Debug("fake slack: socket mode connected", "connections", n)

	defer func() {
		c.close()
		s.mu.Lock()
		s.conns = slices.DeleteFunc(s.conns, func(x *socketConn) bool { return x == c })
		s.notify()
		s.mu.Unlock()
	}()
	hello := map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info":      map[string]any{"host": "fakeslack", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": AppID},
	}
	if err := c.write(hello); err != nil {
		return
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			s.log.Warn("fake slack: unreadable socket mode message", "message", string(data))
			continue
		}
		s.mu.Lock()
		waiter := s.waiters[ack.EnvelopeID]
		delete(s.waiters, ack.EnvelopeID)
		s.mu.Unlock()
		if waiter != nil {
			waiter <- Ack{EnvelopeID: ack.EnvelopeID, Payload: ack.Payload}
		}
	}
}

// ping sends WebSocket pings as Slack does; slack-go reconnects when they
// stop.
func (s *Server) ping(c *socketConn) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.writeMu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
			c.writeMu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

// SendInteraction sends an "interactive" envelope with the payload (e.g. a
// block_actions callback) and waits for the client's ack.
func (s *Server) SendInteraction(ctx context.Context, payload any) (Ack, error) {
	return s.sendNew(ctx, "interactive", payload, false)
}

// SendSlashCommand sends a "slash_commands" envelope and waits for the ack.
// fields override the defaults of a /oncall command by user U0TEST in
// channel C0TEST with empty text.
func (s *Server) SendSlashCommand(ctx context.Context, fields map[string]string) (Ack, error) {
	user, channel := "U0TEST", "C0TEST"
	if v := fields["user_id"]; v != "" {
		user = v
	}
	if v := fields["channel_id"]; v != "" {
		channel = v
	}
	triggerID, responseURL := s.nextInteraction("commands", user, channel)
	cmd := map[string]string{
		"token":                 "verification-token",
		"team_id":               TeamID,
		"team_domain":           "fake",
		"channel_id":            "C0TEST",
		"channel_name":          "incidents",
		"user_id":               "U0TEST",
		"user_name":             "tester",
		"command":               "/oncall",
		"text":                  "",
		"api_app_id":            AppID,
		"is_enterprise_install": "false",
		"response_url":          responseURL,
		"trigger_id":            triggerID,
	}
	for k, v := range fields {
		cmd[k] = v
	}
	ack, err := s.sendNew(ctx, "slash_commands", cmd, true)
	ack.ResponseURL = cmd["response_url"]
	return ack, err
}

// Redeliver sends an envelope again with the same envelope id and payload
// and the next retry_attempt, as Slack does when an ack is late, and waits
// for the ack.
func (s *Server) Redeliver(ctx context.Context, envelopeID string) (Ack, error) {
	s.mu.Lock()
	env, ok := s.envelopes[envelopeID]
	if ok {
		env.RetryAttempt++
	}
	s.mu.Unlock()
	if !ok {
		return Ack{}, fmt.Errorf("fake slack: no envelope %q to redeliver", envelopeID)
	}
	return s.send(ctx, env, "timeout")
}

// Disconnect asks every connected client to reconnect, as Slack does
// before it refreshes a connection.
func (s *Server) Disconnect() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.write(map[string]any{"type": "disconnect", "reason": "refresh_requested",
			"debug_info": map[string]any{"host": "fakeslack"}})
	}
}

func (s *Server) sendNew(ctx context.Context, typ string, payload any, acceptsResponse bool) (Ack, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Ack{}, fmt.Errorf("fake slack: encode %s payload: %w", typ, err)
	}
	s.mu.Lock()
	s.envSeq++
	env := &envelope{
		ID:                     fmt.Sprintf("%08x-fake-4000-8000-%012x", s.envSeq, s.envSeq),
		Type:                   typ,
		Payload:                raw,
		AcceptsResponsePayload: acceptsResponse,
	}
	s.envelopes[env.ID] = env
	s.mu.Unlock()
	return s.send(ctx, env, "")
}

// send writes the envelope to a connection (waiting for one if none is
// open) and waits for its ack.
func (s *Server) send(ctx context.Context, env *envelope, retryReason string) (Ack, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.AckTimeout)
		defer cancel()
	}
	c, err := s.pickConn(ctx)
	if err != nil {
		return Ack{}, err
	}
	got := make(chan Ack, 1)
	s.mu.Lock()
	s.waiters[env.ID] = got
	msg := env.wire(retryReason)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.waiters[env.ID] == got {
			delete(s.waiters, env.ID)
		}
		s.mu.Unlock()
	}()

	start := time.Now()
	if err := c.write(msg); err != nil {
		return Ack{}, fmt.Errorf("fake slack: send envelope %s: %w", env.ID, err)
	}
	select {
	case a := <-got:
		a.Elapsed = time.Since(start)
		return a, nil
	case <-c.done:
		return Ack{}, fmt.Errorf("fake slack: connection closed before the ack of envelope %s", env.ID)
	case <-ctx.Done():
		return Ack{}, fmt.Errorf("fake slack: no ack for envelope %s: %w", env.ID, context.Cause(ctx))
	}
}

// pickConn returns the next open connection in turn, waiting for one.
func (s *Server) pickConn(ctx context.Context) (*socketConn, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errors.New("fake slack: closed")
		}
		if len(s.conns) > 0 {
			s.nextConn = (s.nextConn + 1) % len(s.conns)
			c := s.conns[s.nextConn]
			s.mu.Unlock()
			return c, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("fake slack: no socket mode connection: %w", context.Cause(ctx))
		}
	}
}

// Click says who clicks which button on which message.
type Click struct {
	Channel  string
	TS       string // the message's ts
	UserID   string
	ActionID string
	// Blocks are the message's blocks as the user's client shows them, to
	// click a button of an earlier version (a double click, a stale
	// screen); default the message's current blocks.
	Blocks json.RawMessage
}

// interactionOn returns a copy of the message ts of channel as it stands
// now and a fresh action_ts for an interaction with it.
func (s *Server) interactionOn(channel, ts string) (Message, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.find(channel, ts)
	if m == nil {
		return Message{}, "", fmt.Errorf("fake slack: no message %s in %s", ts, channel)
	}
	return m.clone(), s.newTS(), nil
}

// ClickButton sends the block_actions interaction Slack sends when the user
// clicks the button with the action id on the message as it stands now, and
// waits for the ack. It fails if the message has no such button. A
// button's confirm dialog counts as confirmed. Each call is a new click
// (fresh action_ts and trigger_id); Redeliver repeats one.
func (s *Server) ClickButton(ctx context.Context, c Click) (Ack, error) {
	msg, actionTS, err := s.interactionOn(c.Channel, c.TS)
	if err != nil {
		return Ack{}, err
	}
	triggerID, responseURL := s.nextInteraction("actions", c.UserID, c.Channel)
	if c.Blocks != nil {
		msg.Blocks = c.Blocks
	}
	b, ok := msg.Button(c.ActionID)
	if !ok {
		return Ack{}, fmt.Errorf("fake slack: message %s has no button %q (has %v)", c.TS, c.ActionID, msg.Buttons())
	}
	action := map[string]any{
		"type":      "button",
		"action_id": b.ActionID,
		"block_id":  b.BlockID,
		"text":      map[string]any{"type": "plain_text", "text": b.Text, "emoji": true},
		"action_ts": actionTS,
	}
	if b.Value != "" {
		action["value"] = b.Value
	}
	if b.Style != "" {
		action["style"] = b.Style
	}
	container := map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel, "is_ephemeral": false}
	if msg.ThreadTS != "" {
		container["thread_ts"] = msg.ThreadTS
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": c.UserID, "username": c.UserID, "name": c.UserID, "team_id": TeamID},
		"api_app_id":            AppID,
		"token":                 "verification-token",
		"container":             container,
		"trigger_id":            triggerID,
		"team":                  map[string]any{"id": TeamID, "domain": "fake"},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": msg.Channel, "name": "incidents"},
		"message":               msg.wire(false),
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          responseURL,
		"actions":               []any{action},
	}
	ack, err := s.SendInteraction(ctx, payload)
	ack.ResponseURL = responseURL
	return ack, err
}

// Choice says who picks which option of which select menu on which
// message.
type Choice struct {
	Channel  string
	TS       string // the message's ts
	UserID   string
	ActionID string // the select menu's
	Value    string // the option's
}

// ChooseOption sends the block_actions interaction Slack sends when the
// user picks the option with the value from the static_select menu with
// the action id on the message as it stands now, and waits for the ack.
// It fails if the message has no such menu or the menu no such option.
// Each call is a new choice (fresh action_ts and trigger_id).
func (s *Server) ChooseOption(ctx context.Context, c Choice) (Ack, error) {
	msg, actionTS, err := s.interactionOn(c.Channel, c.TS)
	if err != nil {
		return Ack{}, err
	}
	sel, ok := msg.Select(c.ActionID)
	if !ok {
		return Ack{}, fmt.Errorf("fake slack: message %s has no select menu %q", c.TS, c.ActionID)
	}
	i := slices.IndexFunc(sel.Options, func(o Option) bool { return o.Value == c.Value })
	if i < 0 {
		return Ack{}, fmt.Errorf("fake slack: select menu %q has no option %q (has %v)", c.ActionID, c.Value, sel.Options)
	}
	triggerID, responseURL := s.nextInteraction("actions", c.UserID, c.Channel)
	option := map[string]any{
		"text":  map[string]any{"type": "plain_text", "text": sel.Options[i].Text, "emoji": true},
		"value": c.Value,
	}
	action := map[string]any{
		"type":            "static_select",
		"action_id":       sel.ActionID,
		"block_id":        sel.BlockID,
		"selected_option": option,
		"action_ts":       actionTS,
	}
	container := map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel, "is_ephemeral": false}
	state := map[string]any{sel.BlockID: map[string]any{sel.ActionID: map[string]any{"type": "static_select", "selected_option": option}}}
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": c.UserID, "username": c.UserID, "name": c.UserID, "team_id": TeamID},
		"api_app_id":   AppID,
		"token":        "verification-token",
		"container":    container,
		"trigger_id":   triggerID,
		"team":         map[string]any{"id": TeamID, "domain": "fake"},
		"channel":      map[string]any{"id": msg.Channel, "name": "incidents"},
		"message":      msg.wire(false),
		"state":        map[string]any{"values": state},
		"response_url": responseURL,
		"actions":      []any{action},
	}
	ack, err := s.SendInteraction(ctx, payload)
	ack.ResponseURL = responseURL
	return ack, err
}
