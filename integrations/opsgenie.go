package integrations

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oncallbot/oncall"
)

// Opsgenie's Alert API, as a drop-in: a tool configured for Opsgenie
// (Alertmanager's opsgenie_configs, Zabbix's Opsgenie media type) is
// pointed at the bot by changing its API URL. The token of an integration
// of kind "opsgenie" is its API key, sent as "Authorization: GenieKey
// <token>". Served:
//
//	POST /v2/alerts                                    create an alert
//	POST /v2/alerts/{identifier}/close                 resolve its incident
//	POST /v2/alerts/{identifier}/acknowledge           acknowledge it
//	POST /v2/alerts/{identifier}/unacknowledge         unacknowledge it
//	POST /v2/alerts/{identifier}/notes                 add a note to it
//	PUT  /v2/alerts/{identifier}/message|description   accepted, ignored
//	GET  /v2/alerts/requests/{requestId}               what a request did
//
// An alert's alias is its dedup key: the group key is "og:" + alias, and
// without an alias each alert gets a unique one, as in Opsgenie. The
// actions name the alert by ?identifierType=alias or id (the default); the
// alert id this server reports is the alias in unpadded base64url, so it
// needs no lookup. Tiny ids are not supported. The message and description
// updates Alertmanager sends with update_alerts are answered 202 and not
// queued (the create before them carries the same text), so their request
// status stays unknown.
//
// Requests are answered in Opsgenie's shapes: 202 {"result":"Request will
// be processed","took":…,"requestId":…} where the request id is the batch
// id; errors {"message":…,"took":…,"requestId":…}, with "errors" by field
// for a body that is not processable (422).
const opsgenieKind = "opsgenie"

// Opsgenie's limits on the fields of an alert. The message is cut to its
// limit as Opsgenie cuts it; longer fields are cut too rather than refused.
const (
	ogMaxMessageRunes     = 130
	ogMaxDescriptionRunes = 15000
	ogMaxEntityRunes      = 512
	ogMaxSourceRunes      = 100
	ogMaxUserRunes        = 100
	ogMaxNoteRunes        = 25000
	ogMaxTagRunes         = 50
	// ogGroupPrefix starts the group key of an Opsgenie alias.
	ogGroupPrefix = "og:"
	// A request status not yet known is asked again for up to
	// ogStatusWait: Zabbix polls it in a tight loop a fixed number of
	// times, possibly before the batch leaves the queue.
	ogStatusWait = time.Second
	ogStatusPoll = 50 * time.Millisecond
)

// Opsgenie's messages for the answers that have one.
const (
	ogMsgUnauthorized   = "Could not authenticate"
	ogMsgNotProcessable = "Request body is not processable. Please check the errors."
	ogMsgNotProcessed   = "Request not found. It might not be processed, yet."
	ogMsgAccepted       = "Request will be processed"
)

// registerOpsgenie adds Opsgenie's Alert API endpoints to mux.
func (h *Handler) registerOpsgenie(mux *http.ServeMux) {
	mux.HandleFunc("/v2/alerts", h.opsgenie(h.serveOpsgenieCreate))
	// Zabbix posts to its configured URL with a slash appended.
	mux.HandleFunc("/v2/alerts/{$}", h.opsgenie(h.serveOpsgenieCreate))
	mux.HandleFunc("/v2/alerts/{identifier}/{action}", h.opsgenie(h.serveOpsgenieAction))
	mux.HandleFunc("GET /v2/alerts/requests/{requestId}", h.opsgenie(h.serveOpsgenieRequestStatus))
}

// ogFunc answers a request to the Alert API and returns the status code it
// sent; start is when the request arrived (Opsgenie's "took").
type ogFunc func(w http.ResponseWriter, r *http.Request, start time.Time) int

// opsgenie counts the requests of serve in the ingest metrics.
func (h *Handler) opsgenie(serve ogFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := serve(w, r, start)
		h.metrics.requests.WithLabelValues(opsgenieKind, strconv.Itoa(code)).Inc()
		h.metrics.duration.WithLabelValues(opsgenieKind).Observe(time.Since(start).Seconds())
	}
}

func (h *Handler) serveOpsgenieCreate(w http.ResponseWriter, r *http.Request, start time.Time) int {
	if r.Method != http.MethodPost {
		return writeOpsgenieMethodNotAllowed(w, http.MethodPost, start)
	}
	in, code, ok := h.opsgenieAuth(w, r, start)
	if !ok {
		return code
	}
	body, code, ok := h.opsgenieBody(w, r, in, start)
	if !ok {
		return code
	}
	now := time.Now().UTC()
	b, err := parseOpsgenieCreate(body, now, newBatchID)
	if err != nil {
		h.opsgenieLog(r).Info("ingest rejected: bad payload", "integration", in.Name, "err", err)
		return writeOpsgenieInputError(w, err, start)
	}
	return h.opsgenieAccept(w, r, in, b, body, now, start)
}

func (h *Handler) serveOpsgenieAction(w http.ResponseWriter, r *http.Request, start time.Time) int {
	action := r.PathValue("action")
	method := http.MethodPost
	switch action {
	case "close", "acknowledge", "unacknowledge", "notes":
	case "message", "description":
		// Alertmanager's update_alerts: the create it sent just before
		// carries the same text.
		method = http.MethodPut
	default:
		return writeOpsgenieError(w, http.StatusNotFound, fmt.Sprintf(
			"Alert action %s is not supported; supported: close, acknowledge, unacknowledge, notes", quoteShort(action)), nil, start)
	}
	if r.Method != method {
		return writeOpsgenieMethodNotAllowed(w, method, start)
	}
	in, code, ok := h.opsgenieAuth(w, r, start)
	if !ok {
		return code
	}
	alias, err := opsgenieAlias(r.PathValue("identifier"), r.URL.Query().Get("identifierType"))
	if err != nil {
		h.opsgenieLog(r).Info("ingest rejected: bad identifier", "integration", in.Name, "err", err)
		return writeOpsgenieInputError(w, err, start)
	}
	body, code, ok := h.opsgenieBody(w, r, in, start)
	if !ok {
		return code
	}
	if method == http.MethodPut {
		if _, err := parseDocument(body); err != nil {
			return writeOpsgenieInputError(w, err, start)
		}
		return writeJSON(w, http.StatusAccepted, ogAccepted{Result: ogMsgAccepted, Took: ogSince(start), RequestID: newBatchID()})
	}
	now := time.Now().UTC()
	b, err := parseOpsgenieAction(action, alias, body, now)
	if err != nil {
		h.opsgenieLog(r).Info("ingest rejected: bad payload", "integration", in.Name, "action", action, "err", err)
		return writeOpsgenieInputError(w, err, start)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = nil
	}
	return h.opsgenieAccept(w, r, in, b, body, now, start)
}

// serveOpsgenieRequestStatus reports what became of an accepted request
// from the stored outcome of its batch. It does not check that the
// request came from the integration asking (outcomes do not say).
func (h *Handler) serveOpsgenieRequestStatus(w http.ResponseWriter, r *http.Request, start time.Time) int {
	in, code, ok := h.opsgenieAuth(w, r, start)
	if !ok {
		return code
	}
	o, found, err := h.awaitBatchOutcome(r.Context(), r.PathValue("requestId"))
	if err != nil {
		h.opsgenieLog(r).Error("request status failed", "integration", in.Name, "err", err)
		return writeOpsgenieError(w, http.StatusInternalServerError, "Internal error", nil, start)
	}
	if !found {
		return writeOpsgenieError(w, http.StatusNotFound, ogMsgNotProcessed, nil, start)
	}
	return writeJSON(w, http.StatusOK, ogStatusResponse{Data: opsgenieRequestStatus(o, in), Took: ogSince(start), RequestID: newBatchID()})
}

// awaitBatchOutcome returns the outcome of the batch id once processed,
// asking again for up to ogStatusWait; found is false if it is not
// processed by then, or not known.
func (h *Handler) awaitBatchOutcome(ctx context.Context, id string) (o oncall.BatchOutcome, found bool, err error) {
	outcomes := h.batchOutcomes()
	if outcomes == nil || !isBatchID(id) {
		return oncall.BatchOutcome{}, false, nil
	}
	deadline := time.NewTimer(ogStatusWait)
	defer deadline.Stop()
	tick := time.NewTicker(ogStatusPoll)
	defer tick.Stop()
	for {
		o, err := outcomes.BatchOutcome(ctx, id)
		switch {
		case err == nil && o.Processed:
			return o, true, nil
		case err != nil && !errors.Is(err, oncall.ErrNotFound):
			return oncall.BatchOutcome{}, false, fmt.Errorf("look up outcome of batch %q: %w", id, err)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return oncall.BatchOutcome{}, false, nil
		case <-ctx.Done():
			return oncall.BatchOutcome{}, false, nil
		}
	}
}

// isBatchID reports whether id looks like a newBatchID: 36 bytes of
// lowercase hex digits and dashes. Others are not looked up.
func isBatchID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// opsgenieAuth finds the integration whose token is the request's GenieKey,
// or answers 401.
func (h *Handler) opsgenieAuth(w http.ResponseWriter, r *http.Request, start time.Time) (oncall.Integration, int, bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if strings.EqualFold(scheme, "GenieKey") && token != "" {
		if in, ok := h.Integration(opsgenieKind, token); ok {
			return in, 0, true
		}
	}
	h.opsgenieLog(r).Info("ingest rejected: unknown or missing GenieKey")
	return oncall.Integration{}, writeOpsgenieError(w, http.StatusUnauthorized, ogMsgUnauthorized, nil, start), false
}

// opsgenieBody reads the request body, or answers why it cannot.
func (h *Handler) opsgenieBody(w http.ResponseWriter, r *http.Request, in oncall.Integration, start time.Time) ([]byte, int, bool) {
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes), r.ContentLength)
	if err == nil {
		return body, 0, true
	}
	log := h.opsgenieLog(r).With("integration", in.Name)
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		log.Info("ingest rejected: body too large")
		return nil, writeOpsgenieError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body larger than %d bytes", MaxBodyBytes), nil, start), false
	}
	log.Info("ingest rejected: read body", "err", err)
	return nil, writeOpsgenieError(w, http.StatusBadRequest, "Could not read request body: "+err.Error(), nil, start), false
}

// opsgenieAccept queues b and answers 202 with its batch id as the request
// id, or why it could not be queued.
func (h *Handler) opsgenieAccept(w http.ResponseWriter, r *http.Request, in oncall.Integration, b oncall.AlertBatch,
	raw []byte, now, start time.Time) int {
	id, err := h.Accept(r.Context(), in, opsgenieKind, b, raw, now)
	if err != nil {
		var ae *AcceptError
		if !errors.As(err, &ae) {
			return writeOpsgenieError(w, http.StatusInternalServerError, "Internal error", nil, start)
		}
		if ae.RetryAfter > 0 {
			setRetryAfter(w, ae.RetryAfter)
		}
		return writeOpsgenieError(w, ae.Status, ae.Message, nil, start)
	}
	return writeJSON(w, http.StatusAccepted, ogAccepted{Result: ogMsgAccepted, Took: ogSince(start), RequestID: id})
}

func (h *Handler) opsgenieLog(r *http.Request) *slog.Logger {
	return h.log.With("kind", opsgenieKind, "remote", r.RemoteAddr, "path", r.URL.Path)
}

// parseOpsgenieCreate parses the body of a create-alert request:
//
//   - message (required) is the title, cut to 130 runes; description the
//     message.
//   - alias is the dedup key: GroupKey "og:" + alias and the fingerprint of
//     the batch's one alert. Without one, newAlias makes a unique alias.
//   - priority P1…P5 (default P3) is the severity: critical, error,
//     warning, info, info.
//   - Labels, for routes: the details (values may be strings, numbers or
//     booleans), and over them "priority", "entity", "source", "tags" (the
//     tags joined by commas) and "tag_<tag>": "true" for each tag.
//   - note (with user, "user: note") is added to the incident's timeline.
//   - responders, visibleTo and actions are checked and ignored.
func parseOpsgenieCreate(body []byte, now time.Time, newAlias func() string) (oncall.AlertBatch, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	var f struct{ message, alias, description, priority, entity, source, user, note string }
	if err := strMembers(doc, []strMember{{"message", &f.message}, {"alias", &f.alias}, {"description", &f.description},
		{"priority", &f.priority}, {"entity", &f.entity}, {"source", &f.source}, {"user", &f.user}, {"note", &f.note}}); err != nil {
		return oncall.AlertBatch{}, err
	}
	title := clean(strings.TrimSpace(f.message), ogMaxMessageRunes)
	if strings.TrimSpace(title) == "" {
		return oncall.AlertBatch{}, &InputError{Path: "message", Msg: "Message can not be empty."}
	}
	alias := boundedID(f.alias)
	if strings.TrimSpace(alias) == "" {
		alias = newAlias()
	}
	priority := strings.ToUpper(strings.TrimSpace(f.priority))
	if priority == "" {
		priority = "P3"
	}
	severity, ok := opsgenieSeverity(priority)
	if !ok {
		return oncall.AlertBatch{}, &InputError{Path: "priority", Msg: "should be one of [ P1, P2, P3, P4, P5 ]"}
	}
	for _, key := range []string{"responders", "visibleTo"} {
		if _, _, err := doc.arr(key); err != nil {
			return oncall.AlertBatch{}, err
		}
	}
	if _, err := opsgenieStrings(doc, "actions", maxTitleRunes); err != nil {
		return oncall.AlertBatch{}, err
	}
	tags, err := opsgenieStrings(doc, "tags", ogMaxTagRunes)
	if err != nil {
		return oncall.AlertBatch{}, err
	}
	labels, err := opsgenieDetails(doc)
	if err != nil {
		return oncall.AlertBatch{}, err
	}

	labels["priority"] = priority
	for key, v := range map[string]string{
		"entity": clean(f.entity, ogMaxEntityRunes), "source": clean(f.source, ogMaxSourceRunes),
		"tags": clean(strings.Join(tags, ","), maxLabelValueRunes),
	} {
		if strings.TrimSpace(v) != "" {
			labels[key] = v
		}
	}
	for _, tag := range tags {
		labels["tag_"+tag] = "true"
	}
	message := clean(f.description, ogMaxDescriptionRunes)
	b := oneAlertBatch(ogGroupPrefix+alias, oncall.Alert{
		Fingerprint: alias, Status: oncall.AlertFiring, Title: title, Message: message,
		Severity: severity, Labels: labels, StartsAt: now,
	})
	b.Note = opsgenieNote(f.user, f.note)
	return b, nil
}

// parseOpsgenieAction parses the body of an action on the alert of alias
// (an optional object: user, source, note). close resolves the incident
// (one resolved alert, fingerprint alias); acknowledge and unacknowledge
// act on it; notes (note required) adds a note. A note given with any of
// them is added to the incident's timeline.
func parseOpsgenieAction(action, alias string, body []byte, now time.Time) (oncall.AlertBatch, error) {
	var doc object
	if len(bytes.TrimSpace(body)) > 0 {
		var err error
		if doc, err = parseDocument(body); err != nil {
			return oncall.AlertBatch{}, err
		}
	}
	var user, source, note string
	if err := strMembers(doc, []strMember{{"user", &user}, {"source", &source}, {"note", &note}}); err != nil {
		return oncall.AlertBatch{}, err
	}
	by := clean(firstNonEmpty(user, source, "the Opsgenie API"), ogMaxUserRunes)
	b := oncall.AlertBatch{
		GroupKey: ogGroupPrefix + alias,
		Status:   oncall.AlertFiring,
		Severity: oncall.SeverityInfo,
		Note:     opsgenieNote(user, note),
		Alerts:   []oncall.Alert{},
	}
	switch action {
	case "close":
		b.Status, b.Title = oncall.AlertResolved, "Closed by "+by
		b.Alerts = []oncall.Alert{{Fingerprint: alias, Status: oncall.AlertResolved, Title: b.Title,
			Severity: oncall.SeverityInfo, EndsAt: now}}
	case "acknowledge":
		b.Action, b.Title = oncall.ActionAcknowledge, "Acknowledged by "+by
	case "unacknowledge":
		b.Action, b.Title = oncall.ActionUnacknowledge, "Unacknowledged by "+by
	case "notes":
		if b.Note == "" {
			return oncall.AlertBatch{}, &InputError{Path: "note", Msg: "Note can not be empty."}
		}
		b.Title = "Note by " + by
	default:
		return oncall.AlertBatch{}, fmt.Errorf("unsupported Opsgenie action %q", action)
	}
	return b, nil
}

// strMember is a string member of an object and where to decode it.
type strMember struct {
	key string
	dst *string
}

// strMembers decodes members in order, so that the error reported for a
// body with several wrong members is always the same.
func strMembers(doc object, members []strMember) error {
	for _, m := range members {
		s, err := doc.str(m.key)
		if err != nil {
			return err
		}
		*m.dst = s
	}
	return nil
}

// opsgenieAlias returns the alias an action's identifier names, by its
// identifierType: alias, or id (the default), an alert id this server
// reported, the alias in unpadded base64url.
func opsgenieAlias(identifier, identifierType string) (string, error) {
	alias := identifier
	switch strings.ToLower(identifierType) {
	case "", "id":
		decoded, err := base64.RawURLEncoding.DecodeString(identifier)
		if err != nil || !utf8.Valid(decoded) || strings.IndexByte(string(decoded), 0) >= 0 {
			return "", &InputError{Path: "identifier", Msg: fmt.Sprintf(
				"%s is not an alert id of this server; name the alert by its alias with identifierType=alias",
				quoteShort(identifier))}
		}
		alias = string(decoded)
	case "alias":
	case "tiny":
		return "", &InputError{Path: "identifierType", Msg: "tiny ids are not supported; use id or alias"}
	default:
		return "", &InputError{Path: "identifierType", Msg: "should be one of [ id, alias, tiny ]"}
	}
	alias = boundedID(alias)
	if strings.TrimSpace(alias) == "" {
		return "", &InputError{Path: "identifier", Msg: "may not be empty"}
	}
	return alias, nil
}

// opsgenieAlertID is the alert id reported for an alias (see
// opsgenieAlias).
func opsgenieAlertID(alias string) string { return base64.RawURLEncoding.EncodeToString([]byte(alias)) }

func opsgenieSeverity(priority string) (oncall.Severity, bool) {
	switch priority {
	case "P1":
		return oncall.SeverityCritical, true
	case "P2":
		return oncall.SeverityError, true
	case "P3":
		return oncall.SeverityWarning, true
	case "P4", "P5":
		return oncall.SeverityInfo, true
	}
	return "", false
}

// opsgenieStrings returns the array of strings member key, each trimmed and
// cut to maxRunes, without blanks and repeats (at most maxMapEntries).
func opsgenieStrings(doc object, key string, maxRunes int) ([]string, error) {
	elems, _, err := doc.arr(key)
	if err != nil {
		return nil, err
	}
	if len(elems) > maxMapEntries {
		return nil, inputErrorf(doc.at(key), "more than %d entries", maxMapEntries)
	}
	var out []string
	seen := make(map[string]bool, len(elems))
	for i, raw := range elems {
		s, err := decodeString(indexPath(doc.at(key), i), raw)
		if err != nil {
			return nil, err
		}
		s = clean(strings.TrimSpace(s), maxRunes)
		if strings.TrimSpace(s) == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// opsgenieDetails returns the details as labels (never nil): string values
// as they are, numbers and booleans as their JSON text.
func opsgenieDetails(doc object) (map[string]string, error) {
	labels := map[string]string{}
	sub, ok, err := doc.obj("details")
	if err != nil || !ok {
		return labels, err
	}
	m, err := sanitizeStringMap(sub.path, sub.members, maxLabelValueRunes, func(k string, raw json.RawMessage) (string, error) {
		switch jsonKind(raw) {
		case "number", "boolean":
			return strings.TrimSpace(string(raw)), nil
		}
		return decodeString(sub.at(k), raw)
	})
	if err != nil {
		return nil, err
	}
	for k, v := range m {
		labels[k] = v
	}
	return labels, nil
}

// opsgenieNote is the note of a request, attributed to its user unless it
// names them first already (as Zabbix's do).
func opsgenieNote(user, note string) string {
	note = strings.TrimSpace(note)
	if note == "" {
		return ""
	}
	if user = strings.TrimSpace(user); user != "" && !strings.HasPrefix(note, user) {
		note = clean(user, ogMaxUserRunes) + ": " + note
	}
	return clean(note, ogMaxNoteRunes)
}

// opsgenieRequestStatus describes a processed batch as Opsgenie's request
// status does. The integration id is the integration's name.
func opsgenieRequestStatus(o oncall.BatchOutcome, in oncall.Integration) ogRequestStatus {
	s := ogRequestStatus{Success: true, ProcessedAt: o.ProcessedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		IntegrationID: in.Name}
	switch o.Action {
	case "created":
		s.Action, s.Status = "Create", "Created alert"
	case "joined":
		s.Action, s.Status = "Create", "Alert already exists; its count was increased"
	case "resolved":
		s.Action, s.Status = "Close", "Closed alert"
	case "acknowledged":
		s.Action, s.Status = "Acknowledge", "Acknowledged alert"
	case "unacknowledged":
		s.Action, s.Status = "UnAcknowledge", "UnAcknowledged alert"
	case "noted":
		s.Action, s.Status = "AddNote", "Added note"
	case "unchanged":
		s.Action, s.Status = "Update", "Alert is already in the requested state"
	case "stale":
		s.Action, s.Status = "Update", "Request was older than the alert's latest state; alert left unchanged"
	default: // no_incident, and anything else that touched no incident
		s.Success, s.Action, s.Status = false, "Update", "There is no open alert with this alias"
	}
	s.IsSuccess = s.Success
	if o.IncidentID != 0 {
		s.Alias = strings.TrimPrefix(o.GroupKey, ogGroupPrefix)
		s.AlertID = opsgenieAlertID(s.Alias)
	}
	return s
}

// ogTook is Opsgenie's "took": seconds, to the millisecond.
type ogTook time.Duration

func (d ogTook) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', 3, 64), nil
}

func ogSince(start time.Time) ogTook { return ogTook(time.Since(start)) }

type ogAccepted struct {
	Result    string `json:"result"`
	Took      ogTook `json:"took"`
	RequestID string `json:"requestId"`
}

type ogError struct {
	Message   string            `json:"message"`
	Errors    map[string]string `json:"errors,omitempty"`
	Took      ogTook            `json:"took"`
	RequestID string            `json:"requestId"`
}

type ogStatusResponse struct {
	Data      ogRequestStatus `json:"data"`
	Took      ogTook          `json:"took"`
	RequestID string          `json:"requestId"`
}

type ogRequestStatus struct {
	Success       bool   `json:"success"`
	Action        string `json:"action"`
	ProcessedAt   string `json:"processedAt"`
	IntegrationID string `json:"integrationId"`
	IsSuccess     bool   `json:"isSuccess"`
	Status        string `json:"status"`
	AlertID       string `json:"alertId"`
	Alias         string `json:"alias"`
}

func writeOpsgenieError(w http.ResponseWriter, code int, msg string, errs map[string]string, start time.Time) int {
	return writeJSON(w, code, ogError{Message: msg, Errors: errs, Took: ogSince(start), RequestID: newBatchID()})
}

// writeOpsgenieInputError answers a problem with a request: 422 naming the
// field at fault, or 400 for a body that is not a JSON object.
func writeOpsgenieInputError(w http.ResponseWriter, err error, start time.Time) int {
	ie, ok := errors.AsType[*InputError](err)
	switch {
	case !ok:
		return writeOpsgenieError(w, http.StatusInternalServerError, "Internal error", nil, start)
	case ie.Path == "":
		return writeOpsgenieError(w, http.StatusBadRequest, "Could not parse request body: "+ie.Msg, nil, start)
	}
	return writeOpsgenieError(w, http.StatusUnprocessableEntity, ogMsgNotProcessable, map[string]string{ie.Path: ie.Msg}, start)
}

func writeOpsgenieMethodNotAllowed(w http.ResponseWriter, method string, start time.Time) int {
	w.Header().Set("Allow", method)
	return writeOpsgenieError(w, http.StatusMethodNotAllowed, "Method not allowed, use "+method, nil, start)
}
