package integrations

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Bounds on what a batch may hold. Text longer than its bound is cut with an
// ellipsis; keys, maps and URLs beyond theirs are rejected (or, for URLs
// Alertmanager copies from Prometheus, dropped).
const (
	maxTitleRunes      = 1000
	maxMessageRunes    = 16000 // descriptions, messages, annotation values
	maxLabelValueRunes = 1000
	maxKeyBytes        = 256 // label and annotation names
	maxMapEntries      = 128 // labels or annotations of one alert
	maxURLBytes        = 8192
	maxIDBytes         = 256 // group keys, dedup keys, fingerprints; longer ones are hashed
)

// clean makes s safe to store: valid UTF-8, no NUL bytes (PostgreSQL text
// cannot hold them), at most maxRunes runes (cut with an ellipsis).
func clean(s string, maxRunes int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return truncate(s, maxRunes)
}

// truncate cuts s to at most maxRunes runes, the last of them an ellipsis.
func truncate(s string, maxRunes int) string {
	if len(s) <= maxRunes || utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	n := 0
	for i := range s {
		if n == maxRunes-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// boundedID sanitizes an identifier (group key, dedup key, fingerprint).
// Identifiers longer than maxIDBytes are replaced by "sha256:" and the hex
// digest of the original, which keeps them distinct and stable.
func boundedID(s string) string {
	if len(s) > maxIDBytes {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return clean(s, maxIDBytes)
}

// checkURL reports why s is not an absolute http or https URL of a sane
// length, or "" if it is one.
func checkURL(s string) string {
	if len(s) > maxURLBytes {
		return "longer than 8192 bytes"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	return ""
}
