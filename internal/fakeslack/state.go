package fakeslack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// Message is a message the bot posted, as it stands now.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // the parent's ts for a thread reply, else ""
	Text     string
	Blocks   json.RawMessage // nil when the message has none
	Metadata json.RawMessage // {"event_type":...,"event_payload":...} or nil
	// UpdateCount counts chat.update calls that changed this message.
	UpdateCount int
	// History holds the earlier versions, oldest first.
	History []Version
}

// Version is an earlier text and blocks of an updated message.
type Version struct {
	Text   string
	Blocks json.RawMessage
}

// Ephemeral is a message shown to one user only (chat.postEphemeral).
type Ephemeral struct {
	Channel  string
	User     string
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
}

// Button is a button of a message's actions blocks.
type Button struct {
	BlockID  string
	ActionID string
	Text     string
	Value    string
	Style    string
	URL      string
}

// Buttons lists the message's buttons in order: those of its actions
// blocks and those beside a section's text.
func (m Message) Buttons() []Button { return buttonsOf(m.Blocks) }

func buttonsOf(raw json.RawMessage) []Button {
	type element struct {
		Type     string `json:"type"`
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
		Style    string `json:"style"`
		URL      string `json:"url"`
		Text     struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	var blocks []struct {
		Type      string    `json:"type"`
		BlockID   string    `json:"block_id"`
		Elements  []element `json:"elements"`
		Accessory *element  `json:"accessory"`
	}
	_ = json.Unmarshal(raw, &blocks)
	var out []Button
	for _, b := range blocks {
		elems := b.Elements
		switch {
		case b.Type == "section" && b.Accessory != nil:
			elems = []element{*b.Accessory}
		case b.Type != "actions":
			continue
		}
		for _, e := range elems {
			if e.Type == "button" {
				out = append(out, Button{BlockID: b.BlockID, ActionID: e.ActionID, Text: e.Text.Text, Value: e.Value, Style: e.Style, URL: e.URL})
			}
		}
	}
	return out
}

// Button returns the button with the action id.
func (m Message) Button(actionID string) (Button, bool) {
	for _, b := range m.Buttons() {
		if b.ActionID == actionID {
			return b, true
		}
	}
	return Button{}, false
}

// Select is a static_select menu of a message's actions blocks.
type Select struct {
	BlockID  string
	ActionID string
	Options  []Option
}

// Option is an option of a select menu.
type Option struct {
	Text  string
	Value string
}

// Select returns the static_select menu with the action id.
func (m Message) Select(actionID string) (Select, bool) {
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Options  []struct {
				Text struct {
					Text string `json:"text"`
				} `json:"text"`
				Value string `json:"value"`
			} `json:"options"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	for _, b := range blocks {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type != "static_select" || e.ActionID != actionID {
				continue
			}
			sel := Select{BlockID: b.BlockID, ActionID: e.ActionID}
			for _, o := range e.Options {
				sel.Options = append(sel.Options, Option{Text: o.Text.Text, Value: o.Value})
			}
			return sel, true
		}
	}
	return Select{}, false
}

// wire is the message as Slack returns it in API answers.
func (m *Message) wire(withMetadata bool) map[string]any {
	w := map[string]any{"type": "message", "user": BotUserID, "bot_id": BotID, "text": m.Text, "ts": m.TS, "team": TeamID}
	if m.ThreadTS != "" {
		w["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		w["blocks"] = m.Blocks
	}
	if withMetadata && m.Metadata != nil {
		w["metadata"] = m.Metadata
	}
	return w
}

func (m *Message) clone() Message {
	c := *m
	c.History = slices.Clone(m.History)
	return c
}

// State is a snapshot of everything the fake has seen.
type State struct {
	Messages    []Message // every message and reply, in the order posted
	Ephemerals  []Ephemeral
	Calls       []Call
	Connections int        // open Socket Mode connections
	Views       []View     // modals opened, in order
	Responses   []Response // messages sent to response_urls, in order
}

// Message returns the message with ts in channel.
func (st State) Message(channel, ts string) (Message, bool) {
	for _, m := range st.Messages {
		if m.Channel == channel && m.TS == ts {
			return m, true
		}
	}
	return Message{}, false
}

// TopLevel returns the channel's messages that are not thread replies.
func (st State) TopLevel(channel string) []Message {
	var out []Message
	for _, m := range st.Messages {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

// Replies returns the thread replies to the message ts in channel.
func (st State) Replies(channel, ts string) []Message {
	var out []Message
	for _, m := range st.Messages {
		if m.Channel == channel && m.ThreadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

// CallCount counts the calls of a Web API method, failed ones included.
func (st State) CallCount(method string) int {
	n := 0
	for _, c := range st.Calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// State returns a snapshot of the fake's state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

// snapshot copies the state. Callers hold s.mu.
func (s *Server) snapshot() State {
	st := State{
		Ephemerals:  slices.Clone(s.ephemerals),
		Calls:       slices.Clone(s.calls),
		Connections: len(s.conns),
	}
	for _, m := range s.messages {
		st.Messages = append(st.Messages, m.clone())
	}
	for _, v := range s.ui.views {
		st.Views = append(st.Views, *v)
	}
	st.Responses = slices.Clone(s.ui.answers)
	return st
}

// DeleteMessage deletes a message as a person can in Slack: it is gone
// from the channel and its thread takes no more replies; the replies
// already in the thread stay. False if there is no such message.
func (s *Server) DeleteMessage(channel, ts string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.messages, func(m *Message) bool { return m.Channel == channel && m.TS == ts })
	if i < 0 {
		return false
	}
	s.messages = slices.Delete(s.messages, i, i+1)
	s.notify()
	return true
}

// Messages returns every message and thread reply in the order posted.
func (s *Server) Messages() []Message { return s.State().Messages }

// Ephemerals returns the ephemeral messages in the order posted.
func (s *Server) Ephemerals() []Ephemeral { return s.State().Ephemerals }

// Calls counts the calls of a Web API method, failed and unknown ones
// included.
func (s *Server) Calls(method string) int { return s.State().CallCount(method) }

// CallLog returns every Web API call in the order received.
func (s *Server) CallLog() []Call { return s.State().Calls }

// WaitFor waits until cond holds for the state and returns that state, or
// fails when ctx is done. cond is checked after every change.
func (s *Server) WaitFor(ctx context.Context, cond func(State) bool) (State, error) {
	for {
		s.mu.Lock()
		st, changed := s.snapshot(), s.changed
		s.mu.Unlock()
		if cond(st) {
			return st, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, fmt.Errorf("fake slack: condition not met: %w", context.Cause(ctx))
		}
	}
}
