package integrations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// InputError is a problem with a request body. Path names the offending
// value the way a JavaScript expression would ("alerts[2].labels.team"); it
// is empty for problems with the document as a whole.
type InputError struct {
	Path string
	Msg  string
}

func (e *InputError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func inputErrorf(path, format string, args ...any) *InputError {
	return &InputError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// object is a decoded JSON object whose members are decoded on demand, so
// that every error names the path of the value at fault. Member names are
// case-sensitive; unknown members are ignored.
type object struct {
	path    string
	members map[string]json.RawMessage
}

// parseDocument decodes a request body that must be one JSON object.
func parseDocument(body []byte) (object, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return object{}, inputErrorf("", "empty body: expected a JSON object")
	}
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return object{}, inputErrorf("", "malformed JSON at byte %d: %s", se.Offset, se.Error())
		}
		return object{}, inputErrorf("", "malformed JSON: %s", err.Error())
	}
	if k := jsonKind(raw); k != "object" {
		return object{}, inputErrorf("", "expected a JSON object, got %s", k)
	}
	return parseObject("", raw)
}

// parseObject decodes raw, already known to be valid JSON, as an object.
func parseObject(path string, raw json.RawMessage) (object, error) {
	if k := jsonKind(raw); k != "object" {
		return object{}, inputErrorf(path, "expected object, got %s", k)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return object{}, inputErrorf(path, "decode object: %s", err.Error())
	}
	return object{path: path, members: members}, nil
}

// jsonKind names the type of a valid JSON value by its first byte.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// member returns the raw value of key; a missing key and null are both
// reported as absent.
func (o object) member(key string) (json.RawMessage, bool) {
	raw, ok := o.members[key]
	if !ok || jsonKind(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// at is the path of the member key.
func (o object) at(key string) string { return joinPath(o.path, key) }

// str returns the string member key, "" when absent or null.
func (o object) str(key string) (string, error) {
	raw, ok := o.member(key)
	if !ok {
		return "", nil
	}
	return decodeString(o.at(key), raw)
}

// obj returns the object member key; ok is false when absent or null.
func (o object) obj(key string) (object, bool, error) {
	raw, ok := o.member(key)
	if !ok {
		return object{}, false, nil
	}
	sub, err := parseObject(o.at(key), raw)
	return sub, err == nil, err
}

// arr returns the elements of the array member key; ok is false when absent
// or null.
func (o object) arr(key string) ([]json.RawMessage, bool, error) {
	raw, ok := o.member(key)
	if !ok {
		return nil, false, nil
	}
	if k := jsonKind(raw); k != "array" {
		return nil, false, inputErrorf(o.at(key), "expected array, got %s", k)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, false, inputErrorf(o.at(key), "decode array: %s", err.Error())
	}
	return elems, true, nil
}

// uint returns the non-negative integer member key, 0 when absent or null.
func (o object) uint(key string) (int, error) {
	raw, ok := o.member(key)
	if !ok {
		return 0, nil
	}
	if k := jsonKind(raw); k != "number" {
		return 0, inputErrorf(o.at(key), "expected number, got %s", k)
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
	if err != nil || n < 0 {
		return 0, inputErrorf(o.at(key), "expected a non-negative integer, got %s", quoteShort(string(raw)))
	}
	return n, nil
}

// stringMap returns the member key, an object whose values must all be
// strings, sanitized: keys must be non-empty and at most maxKeyBytes long,
// values are truncated to maxValue runes. It returns nil when the member is
// absent, null or empty.
func (o object) stringMap(key string, maxValue int) (map[string]string, error) {
	sub, ok, err := o.obj(key)
	if err != nil || !ok {
		return nil, err
	}
	return sanitizeStringMap(sub.path, sub.members, maxValue, func(k string, raw json.RawMessage) (string, error) {
		return decodeString(sub.at(k), raw)
	})
}

// sanitizeStringMap checks and sanitizes the members of the object at path
// as stringMap describes; value decodes the value of member k. It returns
// nil for no members.
func sanitizeStringMap[V any](path string, members map[string]V, maxValue int, value func(k string, v V) (string, error)) (map[string]string, error) {
	if len(members) == 0 {
		return nil, nil
	}
	if len(members) > maxMapEntries {
		return nil, inputErrorf(path, "more than %d entries", maxMapEntries)
	}
	// Sorted, so that keys that become equal once sanitized resolve the
	// same way every time.
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		if len(k) > maxKeyBytes {
			return nil, inputErrorf(joinPath(path, k), "key longer than %d bytes", maxKeyBytes)
		}
		key := clean(k, maxKeyBytes)
		if strings.TrimSpace(key) == "" {
			return nil, inputErrorf(path, "empty key")
		}
		v, err := value(k, members[k])
		if err != nil {
			return nil, err
		}
		m[key] = clean(v, maxValue)
	}
	return m, nil
}

func decodeString(path string, raw json.RawMessage) (string, error) {
	if k := jsonKind(raw); k != "string" {
		return "", inputErrorf(path, "expected string, got %s", k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", inputErrorf(path, "decode string: %s", err.Error())
	}
	return s, nil
}

// joinPath appends key to path: `a.b` for identifiers, `a["x y"]` otherwise.
func joinPath(path, key string) string {
	if isIdentifier(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + quoteShort(key) + "]"
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	return strconv.Quote(truncate(strings.ToValidUTF8(s, "\uFFFD"), 64))
}

// startsObject reports whether the first byte of body after whitespace
// opens an object.
func startsObject(body []byte) bool {
	body = bytes.TrimLeft(body, " \t\r\n")
	return len(body) > 0 && body[0] == '{'
}

// plainMembers reports whether decoding body, a valid JSON object, into a
// struct whose JSON field names are names gives each field the member of
// exactly that name, as the document parser would: no top-level member
// name holds an escape, repeats one of names, or equals one of names only
// case-insensitively (the way json.Unmarshal also matches fields). Bit j of
// noNestedNull also requires that the value of names[j] hold no null
// inside it: json.Unmarshal stores a null map value as "", which the
// document parser rejects. names holds at most 64 names.
func plainMembers(body []byte, names [][]byte, noNestedNull uint64) bool {
	var seen uint64 // bit j: names[j] seen
	depth := 0
	atKey := false // the next string at depth 1 is a member name
	member := -1   // index in names of the member whose value is being read
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			depth++
			atKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			atKey = depth == 1
		case 'n': // outside strings, only null holds an n
			if depth > 1 && member >= 0 && noNestedNull&(1<<member) != 0 {
				return false
			}
		case '"':
			end, escaped := i+1, false
			for ; end < len(body) && body[end] != '"'; end++ {
				if body[end] == '\\' {
					escaped = true
					end++
				}
			}
			if atKey {
				if escaped {
					return false
				}
				key := body[i+1 : min(end, len(body))]
				member = -1
				for j, name := range names {
					if bytes.Equal(key, name) {
						if seen&(1<<j) != 0 {
							return false
						}
						seen |= 1 << j
						member = j
					} else if bytes.EqualFold(key, name) {
						return false
					}
				}
				atKey = false
			}
			i = end
		}
	}
	return true
}
