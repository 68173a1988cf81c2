package fakeslack

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
)

// maxRepliesLimit is the largest (and the default) page of
// conversations.replies.
const maxRepliesLimit = 1000

// replies answers conversations.replies: the thread of the message ts (the
// thread it is in, for a reply), oldest first. As in Slack, every page
// starts with the thread's parent; limit counts the replies after it, those
// between oldest and latest (exclusive unless inclusive is set). Further
// pages follow response_metadata.next_cursor. The thread of a deleted
// message is thread_not_found. Callers hold s.mu.
func (s *Server) replies(p map[string]string) map[string]any {
	channel := p["channel"]
	if !s.channelExists(channel) {
		return slackError("channel_not_found")
	}
	parent := s.find(channel, p["ts"])
	if parent != nil && parent.ThreadTS != "" {
		parent = s.find(channel, parent.ThreadTS)
	}
	if parent == nil {
		return slackError("thread_not_found")
	}
	limit := maxRepliesLimit
	if v := p["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return slackError("invalid_limit")
		}
		limit = min(n, maxRepliesLimit)
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
	from := int64(0) // the first ts of this page
	if c := p["cursor"]; c != "" {
		var ok bool
		if from, ok = parseCursor(c); !ok {
			return slackError("invalid_cursor")
		}
	}
	withMeta := p["include_all_metadata"] == "true" || p["include_all_metadata"] == "1"
	out, next := []map[string]any{parent.wire(withMeta)}, ""
	for _, m := range s.messages {
		if m.Channel != channel || m.ThreadTS != parent.TS {
			continue
		}
		t, _ := parseTS(m.TS)
		if t < from || t < oldest || t > latest || (!inclusive && (t == oldest || t == latest)) {
			continue
		}
		if len(out) == limit+1 {
			next = base64.StdEncoding.EncodeToString([]byte("next_ts:" + m.TS))
			break
		}
		out = append(out, m.wire(withMeta))
	}
	return map[string]any{"ok": true, "messages": out, "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}}
}

// parseCursor reads a cursor of replies: the ts the next page starts at.
func parseCursor(c string) (int64, bool) {
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	ts, ok := strings.CutPrefix(string(raw), "next_ts:")
	if !ok {
		return 0, false
	}
	return parseTS(ts)
}
