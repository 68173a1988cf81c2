package fakeslack

import (
	"encoding/json"
	"fmt"
	"net/url"
	"unicode/utf8"
)

// Block Kit limits Slack enforces on messages
// (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxBlocks          = 50
	maxBlockID         = 255
	maxActionID        = 255
	maxHeaderText      = 150
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxContextElements = 10
	maxActionElements  = 25
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxURL             = 3000
	maxAltText         = 2000
	maxConfirmTitle    = 100
	maxConfirmText     = 300
	maxConfirmButton   = 30
)

// blockCount returns how many blocks a valid blocks array holds.
func blockCount(raw json.RawMessage) int {
	var blocks []json.RawMessage
	_ = json.Unmarshal(raw, &blocks)
	return len(blocks)
}

// validateBlocks checks a message's blocks against the rules Slack applies
// to the block types the bot uses, and rejects the types it does not know.
// It returns Slack-style problem messages, none when the blocks are valid.
func validateBlocks(raw string) []string {
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return []string{"[ERROR] blocks must be a JSON array of objects"}
	}
	v := &blockValidator{blockIDs: map[string]bool{}}
	if len(blocks) > maxBlocks {
		v.fail("", "no more than %d items allowed", maxBlocks)
	}
	for i, b := range blocks {
		v.block(fmt.Sprintf("/blocks/%d", i), b)
	}
	return v.problems
}

type blockValidator struct {
	problems []string
	blockIDs map[string]bool
	modal    bool // the blocks of a modal: input blocks are allowed
}

func (v *blockValidator) fail(path, format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf("[ERROR] "+format+" [json-pointer:%s]", append(args, path)...))
}

func (v *blockValidator) block(path string, b map[string]any) {
	if id, ok := b["block_id"]; ok {
		s, isString := id.(string)
		switch {
		case !isString || s == "" || utf8.RuneCountInString(s) > maxBlockID:
			v.fail(path+"/block_id", "must be a string of 1 to %d characters", maxBlockID)
		case v.blockIDs[s]:
			v.fail(path+"/block_id", "duplicate block_id %q", s)
		default:
			v.blockIDs[s] = true
		}
	}
	switch b["type"] {
	case "header":
		v.text(path+"/text", b["text"], true, "plain_text", maxHeaderText)
	case "section":
		_, hasText := b["text"]
		fields, hasFields := b["fields"].([]any)
		if !hasText && !hasFields {
			v.fail(path, "must provide text or fields")
		}
		if hasText {
			v.text(path+"/text", b["text"], true, "", maxSectionText)
		}
		if len(fields) > maxSectionFields {
			v.fail(path+"/fields", "no more than %d items allowed", maxSectionFields)
		}
		for i, f := range fields {
			v.text(fmt.Sprintf("%s/fields/%d", path, i), f, true, "", maxFieldText)
		}
		if acc, ok := b["accessory"]; ok {
			v.button(path+"/accessory", acc, map[string]bool{})
		}
	case "context":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 || len(elems) > maxContextElements {
			v.fail(path+"/elements", "must have 1 to %d items", maxContextElements)
		}
		for i, e := range elems {
			p := fmt.Sprintf("%s/elements/%d", path, i)
			if m, ok := e.(map[string]any); ok && m["type"] == "image" {
				v.image(p, m)
				continue
			}
			v.text(p, e, true, "", maxSectionText)
		}
	case "actions":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 || len(elems) > maxActionElements {
			v.fail(path+"/elements", "must have 1 to %d items", maxActionElements)
		}
		actionIDs := map[string]bool{}
		for i, e := range elems {
			p := fmt.Sprintf("%s/elements/%d", path, i)
			if m, ok := e.(map[string]any); ok && m["type"] == "static_select" {
				v.staticSelect(p, m, actionIDs)
				continue
			}
			v.button(p, e, actionIDs)
		}
	case "image":
		v.image(path, b)
		if title, ok := b["title"]; ok {
			v.text(path+"/title", title, true, "plain_text", maxAltText)
		}
	case "input":
		v.input(path, b)
	case "divider":
	default:
		v.fail(path+"/type", "unsupported block type %v", b["type"])
	}
}

// text checks a text object; kind "" allows plain_text and mrkdwn.
func (v *blockValidator) text(path string, t any, required bool, kind string, maxLen int) {
	m, ok := t.(map[string]any)
	if !ok {
		if required {
			v.fail(path, "must be a text object")
		}
		return
	}
	typ, _ := m["type"].(string)
	want := kind
	if want == "" {
		want = "plain_text or mrkdwn"
	}
	if (kind != "" && typ != kind) || (typ != "plain_text" && typ != "mrkdwn") {
		v.fail(path+"/type", "must be %s", want)
	}
	s, _ := m["text"].(string)
	if n := utf8.RuneCountInString(s); n == 0 || n > maxLen {
		v.fail(path+"/text", "must be 1 to %d characters (has %d)", maxLen, n)
	}
	if _, hasEmoji := m["emoji"]; hasEmoji && typ == "mrkdwn" {
		v.fail(path+"/emoji", "emoji is only allowed on plain_text")
	}
}

func (v *blockValidator) image(path string, m map[string]any) {
	v.url(path+"/image_url", m["image_url"], true)
	alt, _ := m["alt_text"].(string)
	if n := utf8.RuneCountInString(alt); n == 0 || n > maxAltText {
		v.fail(path+"/alt_text", "must be 1 to %d characters", maxAltText)
	}
}

func (v *blockValidator) url(path string, u any, required bool) {
	s, ok := u.(string)
	if !ok {
		if required {
			v.fail(path, "must be a URL")
		}
		return
	}
	parsed, err := url.Parse(s)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" || len(s) > maxURL {
		v.fail(path, "must be an http(s) URL of at most %d characters", maxURL)
	}
}

func (v *blockValidator) button(path string, e any, actionIDs map[string]bool) {
	m, ok := e.(map[string]any)
	if !ok || m["type"] != "button" {
		v.fail(path+"/type", "unsupported element type (the fake knows buttons and static selects only)")
		return
	}
	v.text(path+"/text", m["text"], true, "plain_text", maxButtonText)
	v.actionID(path, m, actionIDs)
	if val, ok := m["value"]; ok {
		s, _ := val.(string)
		if utf8.RuneCountInString(s) > maxButtonValue {
			v.fail(path+"/value", "must be at most %d characters", maxButtonValue)
		}
	}
	if u, ok := m["url"]; ok {
		v.url(path+"/url", u, true)
	}
	if style, ok := m["style"]; ok && style != "primary" && style != "danger" {
		v.fail(path+"/style", "must be primary or danger")
	}
	if c, ok := m["confirm"]; ok {
		cm, _ := c.(map[string]any)
		v.text(path+"/confirm/title", cm["title"], true, "plain_text", maxConfirmTitle)
		v.text(path+"/confirm/text", cm["text"], true, "", maxConfirmText)
		v.text(path+"/confirm/confirm", cm["confirm"], true, "plain_text", maxConfirmButton)
		v.text(path+"/confirm/deny", cm["deny"], true, "plain_text", maxConfirmButton)
	}
}

// staticSelect checks a static_select menu of an actions block.
func (v *blockValidator) staticSelect(path string, m map[string]any, actionIDs map[string]bool) {
	v.actionID(path, m, actionIDs)
	if ph, ok := m["placeholder"]; ok {
		v.text(path+"/placeholder", ph, true, "plain_text", maxPlaceholder)
	}
	v.selectOptions(path, m)
}

// actionID checks the optional action id of an interactive element, unique
// within its block.
func (v *blockValidator) actionID(path string, m map[string]any, actionIDs map[string]bool) {
	id, ok := m["action_id"]
	if !ok {
		return
	}
	s, _ := id.(string)
	switch {
	case s == "" || utf8.RuneCountInString(s) > maxActionID:
		v.fail(path+"/action_id", "must be 1 to %d characters", maxActionID)
	case actionIDs[s]:
		v.fail(path+"/action_id", "duplicate action_id %q in block", s)
	default:
		actionIDs[s] = true
	}
}
