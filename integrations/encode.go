package integrations

import (
	"fmt"

	"github.com/oncallbot/oncall"
)

// rawMember joins the raw body to the encoded batch. Raw is the last field
// of oncall.AlertBatch, so the batch encoded without it and closed after
// it is what json.Marshal makes of the batch with it.
const rawMember = `,"raw":`

// encodeBatch returns the JSON encoding of b with raw as its Raw, the
// bytes json.Marshal would produce, encoding the rest of the batch once
// (and without reflection, see appendBatchJSON).
// raw must be a valid JSON document (or nil): it is copied compacted, the
// way json.Marshal copies a json.RawMessage, without validating it again.
// If the encoding with raw is larger than maxBytes, it returns the
// encoding without raw. It leaves b.Raw set to what it encoded, raw or nil.
func encodeBatch(b *oncall.AlertBatch, raw []byte, maxBytes int) ([]byte, error) {
	b.Raw = nil
	// Room for the batch, which repeats much of the body, and raw.
	data, err := marshalBatch(b, min(2*len(raw)+1024, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("encode alert batch %q: %w", b.ID, err)
	}
	if len(raw) == 0 {
		return data, nil
	}
	closed := len(data) - 1 // without the closing '}'
	data = append(data[:closed], rawMember...)
	data = appendCompactJSON(data, raw)
	data = append(data, '}')
	if len(data) > maxBytes {
		return append(data[:closed], '}'), nil
	}
	b.Raw = raw
	return data, nil
}

// appendCompactJSON appends src, a valid JSON document, to dst as
// json.Marshal encodes a json.RawMessage: without insignificant whitespace,
// and with <, >, &, U+2028 and U+2029 escaped in strings. Unlike
// json.Marshal it does not check that src is valid JSON; on invalid input
// its output is unspecified.
func appendCompactJSON(dst, src []byte) []byte {
	const hexDigits = "0123456789abcdef"
	start := 0 // src[start:i] is still to be copied
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if !inString {
			switch {
			case c == '"':
				inString = true
			case isJSONSpace[c]:
				dst = append(dst, src[start:i]...)
				for i+1 < len(src) && isJSONSpace[src[i+1]] {
					i++
				}
				start = i + 1
			}
			continue
		}
		if !stopInString[c] {
			continue
		}
		switch c {
		case '\\':
			i++ // the escaped byte cannot end the string or need escaping
		case '"':
			inString = false
		case '<', '>', '&':
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case 0xE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8 {
				dst = append(dst, src[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
				i += 2
				start = i + 1
			}
		}
	}
	return append(dst, src[start:]...)
}

// isJSONSpace and stopInString are the bytes appendCompactJSON acts on
// outside and inside strings.
var isJSONSpace, stopInString = func() (space, stop [256]bool) {
	for _, c := range []byte(" \t\n\r") {
		space[c] = true
	}
	for _, c := range []byte("\\\"<>&\xe2") {
		stop[c] = true
	}
	return space, stop
}()
