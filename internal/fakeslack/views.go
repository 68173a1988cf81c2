package fakeslack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// User is a person of the fake workspace (Config.Users), as users.info
// and users.lookupByEmail answer.
type User struct {
	ID    string
	Email string
	Name  string
	TZ    string // IANA time zone; default UTC
}

// View is a modal the bot opened with views.open.
type View struct {
	ID              string
	User            string // whom it was opened for: the user of the trigger
	TriggerID       string
	CallbackID      string
	PrivateMetadata string
	Title           string
	// Raw is the view as the bot sent it; Blocks its blocks.
	Raw    json.RawMessage
	Blocks json.RawMessage
	// Submissions counts SubmitView calls; Closed is set when the bot's
	// answer to one closed the modal (no response_action, or clear).
	Submissions int
	Closed      bool
}

// Response is a message the bot sent to a response_url: the answer to a
// slash command or to a click, shown to User in Channel.
type Response struct {
	URL             string
	User            string
	Channel         string
	ResponseType    string // "ephemeral" or "in_channel"
	Text            string
	Blocks          json.RawMessage
	ReplaceOriginal bool
	DeleteOriginal  bool
}

// Buttons lists the response's buttons in order.
func (r Response) Buttons() []Button { return buttonsOf(r.Blocks) }

// interaction is what a trigger id or a response_url was issued for.
type interaction struct {
	user, channel string
	used          bool // a trigger opened a view already
}

// uiState is what the fake keeps of modals and response_urls.
type uiState struct {
	views     []*View
	triggers  map[string]*interaction // by trigger_id
	responses map[string]*interaction // by response_url
	answers   []Response
	viewSeq   int
}

// issue records a trigger id and a response_url sent to the client for
// the user in channel. Callers hold s.mu.
func (s *Server) issue(triggerID, responseURL, user, channel string) {
	if s.ui.triggers == nil {
		s.ui.triggers = map[string]*interaction{}
		s.ui.responses = map[string]*interaction{}
	}
	if triggerID != "" {
		s.ui.triggers[triggerID] = &interaction{user: user, channel: channel}
	}
	if responseURL != "" {
		s.ui.responses[responseURL] = &interaction{user: user, channel: channel}
	}
}

// nextInteraction returns fresh trigger id and response_url of the kind
// ("commands" or "actions"), issued for the user in channel.
func (s *Server) nextInteraction(kind, user, channel string) (triggerID, responseURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actionSeq++
	n := s.actionSeq
	triggerID = fmt.Sprintf("%d.trigger", n)
	responseURL = fmt.Sprintf("%s/%s/%d", s.base, kind, n)
	s.issue(triggerID, responseURL, user, channel)
	return triggerID, responseURL
}

// user returns the workspace's user with the id. Without Config.Users
// any well-formed user id is a user in UTC. Callers hold s.mu or need
// nothing of the state.
func (s *Server) user(id string) (User, bool) {
	if len(s.cfg.Users) == 0 {
		return User{ID: id, Name: strings.ToLower(id)}, userID.MatchString(id)
	}
	for _, u := range s.cfg.Users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

func (u User) wire() map[string]any {
	tz := u.TZ
	if tz == "" {
		tz = "UTC"
	}
	offset := 0
	if loc, err := time.LoadLocation(tz); err == nil {
		_, offset = time.Now().In(loc).Zone()
	}
	name := u.Name
	if name == "" {
		name = strings.ToLower(u.ID)
	}
	return map[string]any{
		"id": u.ID, "team_id": TeamID, "name": name, "real_name": name, "deleted": false,
		"tz": tz, "tz_label": tz, "tz_offset": offset, "is_bot": false,
		"profile": map[string]any{"email": u.Email, "real_name": name, "display_name": name},
	}
}

// usersInfo answers users.info.
func (s *Server) usersInfo(p map[string]string) map[string]any {
	id := p["user"]
	if id == "" {
		return slackError("user_not_found")
	}
	u, ok := s.user(id)
	if !ok {
		return slackError("user_not_found")
	}
	return map[string]any{"ok": true, "user": u.wire()}
}

// lookupByEmail answers users.lookupByEmail from Config.Users.
func (s *Server) lookupByEmail(p map[string]string) map[string]any {
	email := strings.TrimSpace(p["email"])
	if email == "" {
		return slackError("invalid_email")
	}
	for _, u := range s.cfg.Users {
		if u.Email != "" && strings.EqualFold(u.Email, email) {
			return map[string]any{"ok": true, "user": u.wire()}
		}
	}
	return slackError("users_not_found")
}

// Slack's limits on modals (https://docs.slack.dev/reference/views).
const (
	maxViewTitle    = 24
	maxViewBlocks   = 100
	maxCallbackID   = 255
	maxPrivateMeta  = 3000
	maxInputLabel   = 2000
	maxOptionText   = 75
	maxOptionValue  = 150
	maxSelectOption = 100
	maxPlaceholder  = 150
)

// openView answers views.open: the trigger must be one the fake sent and
// not used yet, and the view a valid modal.
func (s *Server) openView(p map[string]string) map[string]any {
	trig := s.ui.triggers[p["trigger_id"]]
	switch {
	case p["trigger_id"] == "" || trig == nil:
		return slackError("invalid_trigger_id")
	case trig.used:
		return slackError("exchanged_trigger_id")
	}
	raw := p["view"]
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return slackError("invalid_arguments", "[ERROR] view must be a JSON object")
	}
	if problems := validateView(v); len(problems) > 0 {
		return slackError("invalid_arguments", problems...)
	}
	trig.used = true
	s.ui.viewSeq++
	view := &View{
		ID:        fmt.Sprintf("V%08d", s.ui.viewSeq),
		User:      trig.user,
		TriggerID: p["trigger_id"],
		Raw:       json.RawMessage(raw),
	}
	view.CallbackID, _ = v["callback_id"].(string)
	view.PrivateMetadata, _ = v["private_metadata"].(string)
	if t, ok := v["title"].(map[string]any); ok {
		view.Title, _ = t["text"].(string)
	}
	view.Blocks, _ = json.Marshal(v["blocks"])
	s.ui.views = append(s.ui.views, view)
	return map[string]any{"ok": true, "view": view.wire(v, map[string]any{})}
}

// wire is the view as Slack shows it in answers and payloads.
func (v *View) wire(sent map[string]any, values map[string]any) map[string]any {
	w := map[string]any{}
	for k, x := range sent {
		w[k] = x
	}
	w["id"] = v.ID
	w["team_id"] = TeamID
	w["app_id"] = AppID
	w["bot_id"] = BotID
	w["hash"] = fmt.Sprintf("%d.%s", v.Submissions, v.ID)
	w["state"] = map[string]any{"values": values}
	return w
}

func validateView(v map[string]any) []string {
	bv := &blockValidator{blockIDs: map[string]bool{}, modal: true}
	if v["type"] != "modal" {
		bv.fail("/type", "must be modal")
	}
	bv.text("/title", v["title"], true, "plain_text", maxViewTitle)
	bv.text("/close", v["close"], false, "plain_text", maxViewTitle)
	bv.text("/submit", v["submit"], false, "plain_text", maxViewTitle)
	if id, _ := v["callback_id"].(string); utf8.RuneCountInString(id) > maxCallbackID {
		bv.fail("/callback_id", "must be at most %d characters", maxCallbackID)
	}
	if meta, _ := v["private_metadata"].(string); len(meta) > maxPrivateMeta {
		bv.fail("/private_metadata", "must be at most %d characters", maxPrivateMeta)
	}
	blocks, _ := v["blocks"].([]any)
	if len(blocks) == 0 || len(blocks) > maxViewBlocks {
		bv.fail("/blocks", "must have 1 to %d items", maxViewBlocks)
	}
	hasInput := false
	for i, b := range blocks {
		m, _ := b.(map[string]any)
		if m["type"] == "input" {
			hasInput = true
		}
		bv.block(fmt.Sprintf("/blocks/%d", i), m)
	}
	if _, ok := v["submit"]; hasInput && !ok {
		bv.fail("/submit", "is required when the view has input blocks")
	}
	return bv.problems
}

// input checks an input block of a modal.
func (v *blockValidator) input(path string, b map[string]any) {
	if !v.modal {
		v.fail(path+"/type", "input blocks are for modals")
		return
	}
	v.text(path+"/label", b["label"], true, "plain_text", maxInputLabel)
	if hint, ok := b["hint"]; ok {
		v.text(path+"/hint", hint, true, "plain_text", maxInputLabel)
	}
	e, _ := b["element"].(map[string]any)
	p := path + "/element"
	if id, _ := e["action_id"].(string); id == "" || utf8.RuneCountInString(id) > maxActionID {
		v.fail(p+"/action_id", "must be 1 to %d characters", maxActionID)
	}
	if ph, ok := e["placeholder"]; ok {
		v.text(p+"/placeholder", ph, true, "plain_text", maxPlaceholder)
	}
	switch e["type"] {
	case "static_select":
		v.selectOptions(p, e)
	case "users_select", "datetimepicker", "datepicker", "timepicker", "plain_text_input":
	default:
		v.fail(p+"/type", "unsupported input element %v", e["type"])
	}
}

// selectOptions checks the options of a static_select element e at path p.
func (v *blockValidator) selectOptions(p string, e map[string]any) {
	options, _ := e["options"].([]any)
	if len(options) == 0 || len(options) > maxSelectOption {
		v.fail(p+"/options", "must have 1 to %d items", maxSelectOption)
	}
	var values []string
	for i, o := range options {
		om, _ := o.(map[string]any)
		op := fmt.Sprintf("%s/options/%d", p, i)
		v.text(op+"/text", om["text"], true, "plain_text", maxOptionText)
		val, _ := om["value"].(string)
		if val == "" || utf8.RuneCountInString(val) > maxOptionValue {
			v.fail(op+"/value", "must be 1 to %d characters", maxOptionValue)
		}
		values = append(values, val)
	}
	if init, ok := e["initial_option"].(map[string]any); ok {
		if val, _ := init["value"].(string); !slices.Contains(values, val) {
			v.fail(p+"/initial_option", "must be one of the options")
		}
	}
}

// serveResponse takes a message posted to a response_url.
func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	url := s.base + r.URL.Path
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	var msg struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
	}
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.ui.responses[url]
	problem := ""
	switch {
	case in == nil:
		w.WriteHeader(http.StatusNotFound)
		problem = "no_such_response_url"
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
		problem = "invalid_payload"
	case len(msg.Blocks) > 0 && string(msg.Blocks) != "null" && len(validateBlocks(string(msg.Blocks))) > 0:
		w.WriteHeader(http.StatusBadRequest)
		problem = "invalid_blocks"
	case msg.Text == "" && blockCount(msg.Blocks) == 0 && !msg.DeleteOriginal:
		w.WriteHeader(http.StatusBadRequest)
		problem = "no_text"
	case utf8.RuneCountInString(msg.Text) > maxMessageText:
		w.WriteHeader(http.StatusBadRequest)
		problem = "msg_too_long"
	}
	s.calls = append(s.calls, Call{Method: "response_url", Params: map[string]string{"url": url}, Error: problem})
	s.notify()
	if problem != "" {
		_, _ = w.Write([]byte(problem))
		return
	}
	if string(msg.Blocks) == "null" {
		msg.Blocks = nil
	}
	s.ui.answers = append(s.ui.answers, Response{URL: url, User: in.user, Channel: in.channel, ResponseType: msg.ResponseType,
		Text: msg.Text, Blocks: msg.Blocks, ReplaceOriginal: msg.ReplaceOriginal, DeleteOriginal: msg.DeleteOriginal})
	_, _ = w.Write([]byte("ok"))
}

// Views returns the modals the bot opened, in order.
func (s *Server) Views() []View { return s.State().Views }

// Responses returns the messages the bot sent to response_urls, in order.
func (s *Server) Responses() []Response { return s.State().Responses }

// Submission is what a user submits in a modal.
type Submission struct {
	ViewID string
	// UserID submits; default the user the view was opened for.
	UserID string
	// Values holds the inputs the user filled in, by block id: the value
	// of a static_select option, a user id for users_select, Unix seconds
	// for a datetimepicker, the text of a plain_text_input, YYYY-MM-DD for
	// a datepicker and HH:MM for a timepicker. Inputs left out are empty.
	Values map[string]string
}

// SubmitView sends the view_submission Slack sends when the user submits
// the modal with the values, and waits for the ack, whose payload is the
// bot's answer (e.g. {"response_action":"errors",...}). Like Slack's
// client it refuses to submit with a required input empty or a value a
// select does not offer.
func (s *Server) SubmitView(ctx context.Context, sub Submission) (Ack, error) {
	s.mu.Lock()
	var view *View
	for _, v := range s.ui.views {
		if v.ID == sub.ViewID {
			view = v
		}
	}
	s.mu.Unlock()
	if view == nil {
		return Ack{}, fmt.Errorf("fake slack: no view %q", sub.ViewID)
	}
	user := cmpOr(sub.UserID, view.User)
	values, err := inputValues(view.Blocks, sub.Values)
	if err != nil {
		return Ack{}, err
	}
	var sent map[string]any
	if err := json.Unmarshal(view.Raw, &sent); err != nil {
		return Ack{}, fmt.Errorf("fake slack: view %s: %w", view.ID, err)
	}
	trigger, _ := s.nextInteraction("actions", user, "")
	s.mu.Lock()
	view.Submissions++
	wire := view.wire(sent, values)
	s.mu.Unlock()
	payload := map[string]any{
		"type":                  "view_submission",
		"team":                  map[string]any{"id": TeamID, "domain": "fake"},
		"user":                  map[string]any{"id": user, "username": user, "name": user, "team_id": TeamID},
		"api_app_id":            AppID,
		"token":                 "verification-token",
		"trigger_id":            trigger,
		"view":                  wire,
		"response_urls":         []any{},
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
	ack, err := s.sendNew(ctx, "interactive", payload, true)
	if err != nil {
		return ack, err
	}
	var answer struct {
		ResponseAction string `json:"response_action"`
	}
	_ = json.Unmarshal(ack.Payload, &answer)
	if answer.ResponseAction == "" || answer.ResponseAction == "clear" {
		s.mu.Lock()
		view.Closed = true
		s.notify()
		s.mu.Unlock()
	}
	return ack, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// inputValues builds a view's state.values from the values of its inputs.
func inputValues(blocksRaw json.RawMessage, given map[string]string) (map[string]any, error) {
	var blocks []struct {
		Type     string         `json:"type"`
		BlockID  string         `json:"block_id"`
		Optional bool           `json:"optional"`
		Element  map[string]any `json:"element"`
	}
	if err := json.Unmarshal(blocksRaw, &blocks); err != nil {
		return nil, fmt.Errorf("fake slack: view blocks: %w", err)
	}
	values := map[string]any{}
	left := map[string]bool{}
	for id := range given {
		left[id] = true
	}
	for _, b := range blocks {
		if b.Type != "input" {
			continue
		}
		delete(left, b.BlockID)
		typ, _ := b.Element["type"].(string)
		actionID, _ := b.Element["action_id"].(string)
		v, set := given[b.BlockID]
		if !set || v == "" {
			if !b.Optional {
				return nil, fmt.Errorf("fake slack: the required input %q is empty", b.BlockID)
			}
		}
		state := map[string]any{"type": typ}
		switch typ {
		case "static_select":
			state["selected_option"] = nil
			if set && v != "" {
				options, _ := b.Element["options"].([]any)
				i := slices.IndexFunc(options, func(o any) bool { m, _ := o.(map[string]any); return m["value"] == v })
				if i < 0 {
					return nil, fmt.Errorf("fake slack: input %q has no option %q", b.BlockID, v)
				}
				state["selected_option"] = options[i]
			}
		case "users_select":
			state["selected_user"] = nilIfEmpty(v)
		case "datetimepicker":
			state["selected_date_time"] = nil
			if v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("fake slack: input %q takes Unix seconds, not %q", b.BlockID, v)
				}
				state["selected_date_time"] = n
			}
		case "datepicker":
			state["selected_date"] = nilIfEmpty(v)
		case "timepicker":
			state["selected_time"] = nilIfEmpty(v)
		default:
			state["value"] = nilIfEmpty(v)
		}
		values[b.BlockID] = map[string]any{actionID: state}
	}
	for id := range left {
		return nil, fmt.Errorf("fake slack: the view has no input %q", id)
	}
	return values, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ClickResponseButton sends the block_actions interaction of a click by
// the user on a button of a message the bot sent to a response_url (an
// ephemeral message), and waits for the ack.
func (s *Server) ClickResponseButton(ctx context.Context, r Response, user, actionID string) (Ack, error) {
	i := slices.IndexFunc(r.Buttons(), func(b Button) bool { return b.ActionID == actionID })
	if i < 0 {
		return Ack{}, fmt.Errorf("fake slack: the response has no button %q (has %v)", actionID, r.Buttons())
	}
	b := r.Buttons()[i]
	trigger, responseURL := s.nextInteraction("actions", user, r.Channel)
	s.mu.Lock()
	actionTS := s.newTS()
	s.mu.Unlock()
	action := map[string]any{"type": "button", "action_id": b.ActionID, "block_id": b.BlockID, "action_ts": actionTS,
		"text": map[string]any{"type": "plain_text", "text": b.Text, "emoji": true}}
	if b.Value != "" {
		action["value"] = b.Value
	}
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": user, "name": user, "team_id": TeamID},
		"api_app_id":   AppID,
		"token":        "verification-token",
		"container":    map[string]any{"type": "message", "message_ts": actionTS, "channel_id": r.Channel, "is_ephemeral": true},
		"trigger_id":   trigger,
		"team":         map[string]any{"id": TeamID, "domain": "fake"},
		"channel":      map[string]any{"id": r.Channel, "name": "channel"},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": responseURL,
		"actions":      []any{action},
	}
	ack, err := s.SendInteraction(ctx, payload)
	ack.ResponseURL = responseURL
	return ack, err
}

// WaitView waits until the bot has opened a view with the callback id for
// the user, and returns the latest such view.
func (s *Server) WaitView(ctx context.Context, user, callbackID string) (View, error) {
	var found View
	_, err := s.WaitFor(ctx, func(st State) bool {
		for _, v := range slices.Backward(st.Views) {
			if v.User == user && v.CallbackID == callbackID {
				found = v
				return true
			}
		}
		return false
	})
	if err != nil {
		return View{}, fmt.Errorf("fake slack: no view %q for %s: %w", callbackID, user, err)
	}
	return found, nil
}
