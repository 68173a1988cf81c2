package integrations

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// storableJSON returns body, a valid JSON document, in a form PostgreSQL can
// store as text or jsonb: valid UTF-8 without NUL characters. Almost every
// body already is and is kept byte for byte; the rest is decoded, cleaned
// and encoded again (which sorts object keys). It returns nil if that fails.
func storableJSON(body []byte) json.RawMessage {
	if utf8.Valid(body) && !hasNULEscape(body) {
		return json.RawMessage(body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	out, err := json.Marshal(cleanValue(v))
	if err != nil {
		return nil
	}
	return out
}

// hasNULEscape reports whether body may contain the escape \u0000. It errs
// towards yes (an escaped backslash followed by "u0000" also counts).
func hasNULEscape(body []byte) bool {
	for {
		i := bytes.Index(body, []byte(`\u`))
		if i < 0 {
			return false
		}
		body = body[i+2:]
		if len(body) >= 4 && string(body[:4]) == "0000" {
			return true
		}
	}
}

// cleanValue removes invalid UTF-8 and NUL characters from every string,
// key or value, of a decoded JSON value.
func cleanValue(v any) any {
	switch v := v.(type) {
	case string:
		return clean(v, len(v))
	case []any:
		for i := range v {
			v[i] = cleanValue(v[i])
		}
		return v
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[clean(k, len(k))] = cleanValue(e)
		}
		return m
	}
	return v
}
