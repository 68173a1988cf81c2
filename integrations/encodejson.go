package integrations

import (
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/oncallbot/oncall"
)

// appendBatchJSON appends the JSON encoding of b without its Raw, byte for
// byte what json.Marshal produces, without reflection. ok is false if b
// holds a time json.Marshal cannot encode (a year outside 0–9999); the
// caller then uses json.Marshal for its error. The fields follow the
// declarations of oncall.AlertBatch and oncall.Alert, omitempty and
// omitzero included (TestAppendBatchJSON compares with json.Marshal).
func appendBatchJSON(dst []byte, b *oncall.AlertBatch) (_ []byte, ok bool) {
	dst = appendMember(dst, '{', "id", b.ID)
	dst = appendMember(dst, ',', "integration", b.Integration)
	dst = appendMember(dst, ',', "kind", b.Kind)
	if dst, ok = appendTimeMember(dst, "received_at", b.ReceivedAt); !ok {
		return dst, false
	}
	dst = appendMember(dst, ',', "group_key", b.GroupKey)
	dst = appendMember(dst, ',', "status", string(b.Status))
	dst = appendMember(dst, ',', "title", b.Title)
	dst = appendOptional(dst, "message", b.Message)
	dst = appendMember(dst, ',', "severity", string(b.Severity))
	dst = appendOptional(dst, "link", b.Link)
	dst = appendOptional(dst, "image_url", b.ImageURL)
	dst = appendMapMember(dst, "labels", b.Labels)
	dst = appendOptional(dst, "channel", b.Channel)
	dst = appendOptional(dst, "escalation", b.Escalation)
	dst = append(dst, `,"alerts":`...)
	if b.Alerts == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range b.Alerts {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = appendAlertJSON(dst, &b.Alerts[i]); !ok {
				return dst, false
			}
		}
		dst = append(dst, ']')
	}
	dst = appendOptional(dst, "action", string(b.Action))
	dst = appendOptional(dst, "note", b.Note)
	if b.Heartbeat {
		dst = append(dst, `,"heartbeat":true`...)
	}
	if b.Maintenance {
		dst = append(dst, `,"maintenance":true`...)
	}
	return append(dst, '}'), true
}

func appendAlertJSON(dst []byte, a *oncall.Alert) (_ []byte, ok bool) {
	dst = appendMember(dst, '{', "fingerprint", a.Fingerprint)
	dst = appendMember(dst, ',', "status", string(a.Status))
	dst = appendMember(dst, ',', "title", a.Title)
	dst = appendOptional(dst, "message", a.Message)
	dst = appendOptional(dst, "severity", string(a.Severity))
	dst = appendOptional(dst, "link", a.Link)
	dst = appendOptional(dst, "image_url", a.ImageURL)
	dst = appendMapMember(dst, "labels", a.Labels)
	dst = appendMapMember(dst, "annotations", a.Annotations)
	if !a.StartsAt.IsZero() {
		if dst, ok = appendTimeMember(dst, "starts_at", a.StartsAt); !ok {
			return dst, false
		}
	}
	if !a.EndsAt.IsZero() {
		if dst, ok = appendTimeMember(dst, "ends_at", a.EndsAt); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// appendMember appends sep and the member name: value; name needs no
// escaping.
func appendMember(dst []byte, sep byte, name, value string) []byte {
	dst = append(dst, sep, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, value)
}

// appendOptional is appendMember for an omitempty string.
func appendOptional(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	return appendMember(dst, ',', name, value)
}

// appendMapMember appends an omitempty map member, its keys sorted.
func appendMapMember(dst []byte, name string, m map[string]string) []byte {
	if len(m) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		dst = append(dst, sep)
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	return append(dst, '}')
}

// appendTimeMember appends the member name: t as time.Time.MarshalJSON
// encodes it; ok is false where that fails.
func appendTimeMember(dst []byte, name string, t time.Time) (_ []byte, ok bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	if _, offset := t.Zone(); offset <= -24*60*60 || offset >= 24*60*60 {
		return dst, false
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}

// jsonSafe holds the ASCII bytes appendJSONString copies as they are.
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for c := range safe {
		safe[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return safe
}()

// appendJSONString appends s as a JSON string the way json.Marshal does:
// <, > and & escaped for HTML, invalid UTF-8 replaced by U+FFFD, U+2028
// and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// marshalBatch encodes b, which must have no Raw, as json.Marshal does,
// into a new slice of capacity sizeHint or more.
func marshalBatch(b *oncall.AlertBatch, sizeHint int) ([]byte, error) {
	if data, ok := appendBatchJSON(make([]byte, 0, max(sizeHint, 0)), b); ok {
		return data, nil
	}
	return json.Marshal(b)
}
