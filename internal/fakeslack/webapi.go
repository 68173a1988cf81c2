package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBody is the largest request body the fake reads.
const maxBody = 1 << 20

// maxMessageText is Slack's limit on a message's text.
const maxMessageText = 40000

type tokenKind int

const (
	tokenNone tokenKind = iota // unknown method
	tokenBot
	tokenApp
)

// methodToken says which token a method takes; tokenNone means the fake
// does not know the method.
func methodToken(method string) tokenKind {
	switch method {
	case "auth.test", "chat.postMessage", "chat.update", "chat.postEphemeral", "chat.getPermalink", "conversations.history",
		"conversations.replies", "conversations.open", "usergroups.users.update", "usergroups.users.list",
		"views.open", "users.info", "users.lookupByEmail":
		return tokenBot
	case "apps.connections.open":
		return tokenApp
	}
	return tokenNone
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	params, token, err := readParams(r)
	s.mu.Lock()
	call := Call{Method: method, Params: params}
	var body map[string]any
	f, faulted := s.takeFault(method, params)
	switch {
	case faulted && f.slackError == "":
		call.Error = "http " + strconv.Itoa(f.status)
	case faulted:
		call.Error = f.slackError
	case err != nil:
		body = slackError("invalid_form_data", err.Error())
	default:
		body = s.answer(method, token, params)
	}
	if body != nil {
		if code, ok := body["error"].(string); ok {
			call.Error = code
		}
	}
	s.calls = append(s.calls, call)
	h := s.takeHold(method, params)
	s.notify()
	s.mu.Unlock()

	s.log.Debug("fake slack: web api", "method", method, "error", call.Error)
	if h != nil {
		select {
		case <-h.released:
		case <-r.Context().Done():
			return // the client is gone: nobody to answer
		}
	}
	if faulted {
		writeFault(w, f)
		return
	}
	writeSlack(w, body)
}

// answer runs one Web API method. Callers hold s.mu.
func (s *Server) answer(method, token string, p map[string]string) map[string]any {
	kind := methodToken(method)
	if kind == tokenNone {
		return slackError("unknown_method")
	}
	want, other := s.cfg.BotToken, s.cfg.AppToken
	if kind == tokenApp {
		want, other = other, want
	}
	switch token {
	case want:
	case "":
		return slackError("not_authed")
	case other:
		return slackError("not_allowed_token_type")
	default:
		return slackError("invalid_auth")
	}
	switch method {
	case "auth.test":
		return map[string]any{"ok": true, "url": "https://fake.slack.com/", "team": TeamName, "user": "oncall",
			"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID}
	case "apps.connections.open":
		s.opens++
		return map[string]any{"ok": true, "url": fmt.Sprintf("ws%s/socket?ticket=%d&app_id=%s",
			strings.TrimPrefix(s.base, "http"), s.opens, AppID)}
	case "chat.postMessage":
		return s.postMessage(p)
	case "chat.update":
		return s.updateMessage(p)
	case "chat.postEphemeral":
		return s.postEphemeral(p)
	case "chat.getPermalink":
		return s.permalink(p)
	case "conversations.history":
		return s.history(p)
	case "conversations.replies":
		return s.replies(p)
	case "conversations.open":
		return s.openConversation(p)
	case "usergroups.users.update":
		return s.updateUsergroupUsers(p)
	case "usergroups.users.list":
		return s.listUsergroupUsers(p)
	case "views.open":
		return s.openView(p)
	case "users.info":
		return s.usersInfo(p)
	case "users.lookupByEmail":
		return s.lookupByEmail(p)
	}
	return slackError("unknown_method")
}

// content validates what a message shows: text, blocks, metadata.
type content struct {
	text     string
	blocks   json.RawMessage
	metadata json.RawMessage
}

func readContent(p map[string]string) (content, map[string]any) {
	c := content{text: p["text"]}
	if utf8.RuneCountInString(c.text) > maxMessageText {
		return c, slackError("msg_too_long")
	}
	if raw, ok := p["blocks"]; ok {
		if problems := validateBlocks(raw); len(problems) > 0 {
			return c, slackError("invalid_blocks", problems...)
		}
		c.blocks = json.RawMessage(raw)
	}
	if c.text == "" && blockCount(c.blocks) == 0 && p["attachments"] == "" {
		return c, slackError("no_text")
	}
	if raw, ok := p["metadata"]; ok && raw != "" {
		var m struct {
			EventType    string          `json:"event_type"`
			EventPayload json.RawMessage `json:"event_payload"`
		}
		if err := json.Unmarshal([]byte(raw), &m); err != nil || m.EventType == "" || !isJSONObject(m.EventPayload) {
			return c, slackError("invalid_metadata_format")
		}
		c.metadata = json.RawMessage(raw)
	}
	return c, nil
}

func (s *Server) postMessage(p map[string]string) map[string]any {
	channel := p["channel"]
	if !s.channelExists(channel) {
		return slackError("channel_not_found")
	}
	c, problem := readContent(p)
	if problem != nil {
		return problem
	}
	threadTS := p["thread_ts"]
	if threadTS != "" {
		parent := s.find(channel, threadTS)
		if parent == nil {
			return slackError("thread_not_found")
		}
		if parent.ThreadTS != "" {
			threadTS = parent.ThreadTS
		}
	}
	m := &Message{Channel: channel, TS: s.newTS(), ThreadTS: threadTS, Text: c.text, Blocks: c.blocks, Metadata: c.metadata}
	s.messages = append(s.messages, m)
	return map[string]any{"ok": true, "channel": channel, "ts": m.TS, "message": m.wire(false)}
}

func (s *Server) updateMessage(p map[string]string) map[string]any {
	channel := p["channel"]
	if !s.channelExists(channel) {
		return slackError("channel_not_found")
	}
	m := s.find(channel, p["ts"])
	if m == nil {
		return slackError("message_not_found")
	}
	c, problem := readContent(p)
	if problem != nil {
		return problem
	}
	m.History = append(m.History, Version{Text: m.Text, Blocks: m.Blocks})
	m.Text, m.Blocks = c.text, c.blocks
	if c.metadata != nil {
		m.Metadata = c.metadata
	}
	m.UpdateCount++
	return map[string]any{"ok": true, "channel": channel, "ts": m.TS, "text": m.Text, "message": m.wire(false)}
}

func (s *Server) postEphemeral(p map[string]string) map[string]any {
	channel := p["channel"]
	if !s.channelExists(channel) {
		return slackError("channel_not_found")
	}
	if p["user"] == "" {
		return slackError("user_not_in_channel")
	}
	c, problem := readContent(p)
	if problem != nil {
		return problem
	}
	e := Ephemeral{Channel: channel, User: p["user"], TS: s.newTS(), ThreadTS: p["thread_ts"], Text: c.text, Blocks: c.blocks}
	s.ephemerals = append(s.ephemerals, e)
	return map[string]any{"ok": true, "message_ts": e.TS}
}

// permalink answers chat.getPermalink: Slack's link to a message (or a
// thread reply) that exists, PermalinkURL.
func (s *Server) permalink(p map[string]string) map[string]any {
	channel := p["channel"]
	if !s.channelExists(channel) {
		return slackError("channel_not_found")
	}
	m := s.find(channel, p["message_ts"])
	if m == nil {
		return slackError("message_not_found")
	}
	return map[string]any{"ok": true, "channel": channel, "permalink": PermalinkURL(channel, m.TS)}
}

// PermalinkURL is the link chat.getPermalink answers for the message ts in
// channel, shaped as Slack's: .../archives/C123/p1700000000000100.
func PermalinkURL(channel, ts string) string {
	return "https://fake.slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// history answers conversations.history: the channel's top-level messages
// between oldest and latest (exclusive unless inclusive is set), newest
// first, at most limit of them, without paging.
func (s *Server) history(p map[string]string) map[string]any {
	channel := p["channel"]
	if !s.channelExists(channel) {
		return slackError("channel_not_found")
	}
	limit := 100
	if v := p["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return slackError("invalid_limit")
		}
		limit = min(n, 999)
	}
	oldest, latest := int64(0), int64(math.MaxInt64)
	for name, bound := range map[string]*int64{"oldest": &oldest, "latest": &latest} {
		if v := p[name]; v != "" {
			t, ok := parseTS(v)
			if !ok {
				return slackError("invalid_ts_" + name)
			}
			*bound = t
		}
	}
	inclusive := p["inclusive"] == "true" || p["inclusive"] == "1"
	withMeta := p["include_all_metadata"] == "true" || p["include_all_metadata"] == "1"
	out, more := []map[string]any{}, false
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if m.Channel != channel || m.ThreadTS != "" {
			continue
		}
		t, _ := parseTS(m.TS)
		if t < oldest || t > latest || (!inclusive && (t == oldest || t == latest)) {
			continue
		}
		if len(out) == limit {
			more = true
			break
		}
		out = append(out, m.wire(withMeta))
	}
	return map[string]any{"ok": true, "messages": out, "has_more": more}
}

// parseTS reads a Slack timestamp ("1700000000.000100") as microseconds.
func parseTS(ts string) (int64, bool) {
	secs, frac, _ := strings.Cut(ts, ".")
	if len(frac) > 6 {
		return 0, false
	}
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || s < 0 || s >= 1<<40 { // far beyond any real ts; keeps s*1e6 in range
		return 0, false
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 32)
		if err != nil {
			return 0, false
		}
		us = int64(f)
	}
	return s*1e6 + us, true
}

// find returns the stored message, or nil. Callers hold s.mu.
func (s *Server) find(channel, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// readParams reads a request's arguments from its form or JSON body, and
// its token from the Authorization header or (for forms) the token field.
// Non-string JSON members are kept as their JSON text, as Slack takes them.
func readParams(r *http.Request) (map[string]string, string, error) {
	token := bearer(r)
	params := map[string]string{}
	for k, vs := range r.URL.Query() {
		params[k] = vs[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return params, token, fmt.Errorf("read body: %w", err)
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case len(body) == 0:
	case ctype == "application/json":
		var members map[string]json.RawMessage
		if err := json.Unmarshal(body, &members); err != nil {
			return params, token, fmt.Errorf("decode JSON body: %w", err)
		}
		for k, raw := range members {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				params[k] = str
			} else {
				params[k] = string(raw)
			}
		}
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return params, token, fmt.Errorf("decode form body: %w", err)
		}
		for k, vs := range form {
			params[k] = vs[0]
		}
	}
	if t, ok := params["token"]; ok {
		if token == "" && ctype != "application/json" {
			token = t
		}
		delete(params, "token")
	}
	return params, token, nil
}

func isJSONObject(raw json.RawMessage) bool {
	var m map[string]any
	return json.Unmarshal(raw, &m) == nil && m != nil
}
