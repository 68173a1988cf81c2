package twilio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/oncallbot/oncall"
)

// IncidentActions reads incidents and acts on them for a person.
type IncidentActions interface {
	Incident(ctx context.Context, id int64) (oncall.Incident, error)
	// Act returns errors wrapping oncall.ErrNotFound or oncall.ErrConflict;
	// the same key twice changes nothing the second time.
	Act(ctx context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (oncall.Incident, error)
}

// DeliveryStatuses records what Twilio reports of a page.
type DeliveryStatuses interface {
	// RecordDeliveryStatus returns an error wrapping oncall.ErrNotFound for
	// an unknown delivery.
	RecordDeliveryStatus(ctx context.Context, deliveryID int64, status oncall.DeliveryStatus, detail string) (bool, error)
}

// PhoneBook tells who a phone number belongs to.
type PhoneBook interface {
	// ActorForPhone returns false for a number not on the on-call list.
	ActorForPhone(ctx context.Context, phone string) (oncall.Actor, bool)
}

// InboundConfig is what the Twilio routes need.
type InboundConfig struct {
	// AuthToken checks the signature of every request.
	AuthToken string
	// PublicURL is the address Twilio reaches the bot at; the signature
	// covers the URL as Twilio saw it. Empty: the URL the request arrived
	// at.
	PublicURL  string
	Incidents  IncidentActions
	Deliveries DeliveryStatuses
	People     PhoneBook
	Logger     *slog.Logger
}

// What the routes answer.
const (
	replyUnknownNumber = "This number is not on the on-call list."
	replyUsage         = "Reply A and the incident number to acknowledge it (A12 or ACK 12), R and the number to resolve it (R12 or RESOLVE 12)."
	sayGone            = "This incident no longer exists."
	sayNotAnOption     = "Sorry, that key is not an option."
)

// Inbound answers Twilio's requests: replies to the paging SMS, the TwiML
// and key presses of paging calls, and the status callbacks of both.
type Inbound struct {
	cfg InboundConfig
	log *slog.Logger
}

// NewInbound returns the Twilio routes for cfg.
func NewInbound(cfg InboundConfig) *Inbound {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return &Inbound{cfg: cfg, log: log}
}

// Register adds the routes to mux:
//
//	POST /twilio/sms                                  a reply to a paging SMS
//	POST /twilio/voice?incident=ID&delivery=ID        the TwiML of a paging call
//	POST /twilio/voice/gather?incident=ID&delivery=ID the key pressed in it
//	POST /twilio/status?delivery=ID                   status callbacks of both
//
// Each takes only POSTs signed with the auth token.
func (in *Inbound) Register(mux *http.ServeMux) {
	mux.Handle("/twilio/sms", in.route(in.serveSMS))
	mux.Handle("/twilio/voice", in.route(in.serveVoice))
	mux.Handle("/twilio/voice/gather", in.route(in.serveGather))
	mux.Handle("/twilio/status", in.route(in.serveStatus))
}

func (in *Inbound) route(h http.HandlerFunc) http.Handler {
	var publicURL func(*http.Request) string
	if in.cfg.PublicURL != "" {
		publicURL = func(r *http.Request) string { return in.cfg.PublicURL + r.URL.RequestURI() }
	}
	signed := RequireSignature(in.cfg.AuthToken, publicURL, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
			return
		}
		signed.ServeHTTP(w, r)
	})
}

// serveSMS acts on a reply to a paging SMS and answers by SMS. A valid
// request always gets 200: Twilio would only log another status, and the
// person learns more from a reply.
func (in *Inbound) serveSMS(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	from, sid := r.PostForm.Get("From"), r.PostForm.Get("MessageSid")
	log := in.log.With("from", from, "message", sid)
	actor, ok := in.cfg.People.ActorForPhone(ctx, from)
	if !ok {
		log.Info("twilio sms from a number not on the on-call list ignored")
		writeTwiML(w, ReplyMessage(replyUnknownNumber))
		return
	}
	action, id, ok := parseReply(r.PostForm.Get("Body"))
	if !ok {
		writeTwiML(w, ReplyMessage(replyUsage))
		return
	}
	res := in.act(ctx, log, id, action, actor, "twilio-sms:"+sid)
	writeTwiML(w, ReplyMessage(res.sms()))
}

// parseReply reads a reply to a paging SMS: A12, ACK 12 or ACKNOWLEDGE 12
// acknowledges incident 12, R12, RES 12 or RESOLVE 12 resolves it. Case and spaces do
// not matter, and a # before the number is allowed.
func parseReply(body string) (oncall.Action, int64, bool) {
	s := strings.ToUpper(strings.Join(strings.Fields(body), ""))
	for _, v := range []struct {
		word   string
		action oncall.Action
	}{ // longest first: "RESOLVE" also starts with "R"
		{"ACKNOWLEDGE", oncall.ActionAcknowledge},
		{"RESOLVE", oncall.ActionResolve},
		{"ACK", oncall.ActionAcknowledge},
		{"RES", oncall.ActionResolve},
		{"A", oncall.ActionAcknowledge},
		{"R", oncall.ActionResolve},
	} {
		if rest, ok := strings.CutPrefix(s, v.word); ok {
			id, ok := positiveID(strings.TrimPrefix(rest, "#"))
			return v.action, id, ok
		}
	}
	return "", 0, false
}

// serveVoice is the TwiML of a paging call, fetched when it is answered.
func (in *Inbound) serveVoice(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	incidentID, deliveryID, ok := voiceIDs(w, r)
	if !ok {
		return
	}
	inc, err := in.cfg.Incidents.Incident(ctx, incidentID)
	switch {
	case errors.Is(err, oncall.ErrNotFound):
		writeTwiML(w, Say(sayGone))
	case err != nil:
		in.log.Error("twilio call: read the incident", "incident", incidentID, "err", err)
		writeTwiML(w, Say(fmt.Sprintf("This is oncall. Incident %d could not be read. Please check Slack. Goodbye.", incidentID)))
	case inc.Status == oncall.StatusResolved:
		writeTwiML(w, Say(fmt.Sprintf("This is oncall. Incident %d is already resolved. Goodbye.", incidentID)))
	default:
		writeTwiML(w, SayAndGather(callSummary(inc), in.gatherURL(incidentID, deliveryID)))
	}
}

// serveGather acts on the key pressed in a paging call.
func (in *Inbound) serveGather(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	incidentID, deliveryID, ok := voiceIDs(w, r)
	if !ok {
		return
	}
	digits, sid := r.PostForm.Get("Digits"), r.PostForm.Get("CallSid")
	var action oncall.Action
	switch digits {
	case "1":
		action = oncall.ActionAcknowledge
	case "2":
		action = oncall.ActionResolve
	default:
		writeTwiML(w, SayAndGather(sayNotAnOption, in.gatherURL(incidentID, deliveryID)))
		return
	}
	// The bot placed the call, so To is the person who answered.
	to := r.PostForm.Get("To")
	log := in.log.With("to", to, "call", sid)
	actor, ok := in.cfg.People.ActorForPhone(ctx, to)
	if !ok {
		log.Info("twilio call key press from a number not on the on-call list ignored")
		writeTwiML(w, Say(replyUnknownNumber+" Goodbye."))
		return
	}
	res := in.act(ctx, log, incidentID, action, actor, "twilio-call:"+sid+":"+digits)
	if res.err != nil && !errors.Is(res.err, oncall.ErrNotFound) && !errors.Is(res.err, oncall.ErrConflict) {
		// Worth another key press: the same key makes the same change.
		writeTwiML(w, SayAndGather(res.speech(), in.gatherURL(incidentID, deliveryID)))
		return
	}
	writeTwiML(w, Say(res.speech()))
}

// voiceIDs reads the incident and delivery of a call's URL; it answers 400
// when they are not positive integers.
func voiceIDs(w http.ResponseWriter, r *http.Request) (incidentID, deliveryID int64, ok bool) {
	q := r.URL.Query()
	incidentID, ok = positiveID(q.Get("incident"))
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_query", "incident must be a positive integer")
		return 0, 0, false
	}
	deliveryID, ok = positiveID(q.Get("delivery"))
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_query", "delivery must be a positive integer")
		return 0, 0, false
	}
	return incidentID, deliveryID, true
}

// gatherURL is where a call posts its key press: absolute with PublicURL,
// else relative to the TwiML's URL, which Twilio resolves.
func (in *Inbound) gatherURL(incidentID, deliveryID int64) string {
	return in.cfg.PublicURL + "/twilio/voice/gather?" + voiceQuery(incidentID, deliveryID)
}

// serveStatus records what Twilio reports of a page: delivered, answered,
// failed. Progress on the way (queued, sent, ringing) records nothing.
func (in *Inbound) serveStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := positiveID(r.URL.Query().Get("delivery"))
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_query", "delivery must be a positive integer")
		return
	}
	status, detail, ok := deliveryOutcome(r.PostForm)
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	log := in.log.With("delivery", id, "status", status, "detail", detail,
		"sid", r.PostForm.Get("MessageSid")+r.PostForm.Get("CallSid"))
	changed, err := in.cfg.Deliveries.RecordDeliveryStatus(ctx, id, status, detail)
	switch {
	case errors.Is(err, oncall.ErrNotFound):
		// 200 all the same: an error would only have Twilio try again.
		log.Warn("twilio status callback for an unknown delivery ignored")
	case err != nil:
		log.Error("twilio status callback: record the delivery status", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "the status could not be recorded")
		return
	default:
		log.Debug("twilio status callback recorded", "changed", changed)
	}
	w.WriteHeader(http.StatusOK)
}

// deliveryOutcome maps a status callback to a delivery status, or false for
// a status on the way (queued, sending, sent, initiated, ringing).
// Twilio's "completed" means a call was answered and ended normally.
func deliveryOutcome(form url.Values) (oncall.DeliveryStatus, string, bool) {
	withCode := func(detail string) string {
		if code := form.Get("ErrorCode"); code != "" && code != "0" {
			return detail + " (" + code + ")"
		}
		return detail
	}
	if s := form.Get("MessageStatus"); s != "" {
		switch s {
		case "delivered":
			return oncall.DeliveryDelivered, "", true
		case "failed", "undelivered":
			return oncall.DeliveryFailed, withCode(s), true
		}
		return "", "", false
	}
	switch s := form.Get("CallStatus"); s {
	case "in-progress", "completed":
		return oncall.DeliveryDelivered, "answered", true
	case "busy", "canceled":
		return oncall.DeliveryFailed, s, true
	case "no-answer":
		return oncall.DeliveryFailed, "no answer", true
	case "failed":
		return oncall.DeliveryFailed, withCode(s), true
	}
	return "", "", false
}

// result is what came of a person's action, told back by SMS or by voice.
type result struct {
	id     int64
	action oncall.Action
	err    error                 // nil, or wrapping ErrNotFound, ErrConflict or anything else
	status oncall.IncidentStatus // on ErrConflict, when known
}

func (in *Inbound) act(ctx context.Context, log *slog.Logger, id int64, a oncall.Action, actor oncall.Actor, key string) result {
	res := result{id: id, action: a}
	var inc oncall.Incident
	inc, res.err = in.cfg.Incidents.Act(ctx, id, a, actor, key)
	if res.err == nil && inc.Status != res.wantStatus() {
		// Act changes nothing when the action does not apply (acknowledging
		// a resolved incident): say so rather than claim it worked.
		res.err, res.status = fmt.Errorf("incident %d is %s: %w", id, inc.Status, oncall.ErrConflict), inc.Status
	}
	switch {
	case res.err == nil:
		log.Info("incident changed from twilio", "incident", id, "action", a, "actor", actor)
	case errors.Is(res.err, oncall.ErrNotFound):
	case errors.Is(res.err, oncall.ErrConflict):
		if inc, err := in.cfg.Incidents.Incident(ctx, id); err == nil {
			res.status = inc.Status
		}
	default:
		log.Error("twilio: act on the incident", "incident", id, "action", a, "err", res.err)
	}
	return res
}

// wantStatus is the incident's status once the action is done.
func (res result) wantStatus() oncall.IncidentStatus {
	if res.action == oncall.ActionResolve {
		return oncall.StatusResolved
	}
	return oncall.StatusAcknowledged
}

func (res result) done() string {
	if res.action == oncall.ActionResolve {
		return "resolved"
	}
	return "acknowledged"
}

func (res result) sms() string {
	switch {
	case res.err == nil:
		return fmt.Sprintf("Incident #%d %s.", res.id, res.done())
	case errors.Is(res.err, oncall.ErrNotFound):
		return fmt.Sprintf("Incident #%d does not exist.", res.id)
	case errors.Is(res.err, oncall.ErrConflict) && res.status != "":
		return fmt.Sprintf("Incident #%d is %s; it cannot be %s.", res.id, res.status, res.done())
	case errors.Is(res.err, oncall.ErrConflict):
		return fmt.Sprintf("Incident #%d cannot be %s now.", res.id, res.done())
	}
	return fmt.Sprintf("Incident #%d could not be %s. Try again, or use Slack.", res.id, res.done())
}

func (res result) speech() string {
	switch {
	case res.err == nil:
		return fmt.Sprintf("Incident %d %s. Goodbye.", res.id, res.done())
	case errors.Is(res.err, oncall.ErrNotFound):
		return sayGone
	case errors.Is(res.err, oncall.ErrConflict) && res.status != "":
		return fmt.Sprintf("Incident %d is %s. It cannot be %s. Goodbye.", res.id, res.status, res.done())
	case errors.Is(res.err, oncall.ErrConflict):
		return fmt.Sprintf("Incident %d cannot be %s now. Goodbye.", res.id, res.done())
	}
	return fmt.Sprintf("Sorry, incident %d could not be %s.", res.id, res.done())
}

func positiveID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func writeTwiML(w http.ResponseWriter, doc []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(doc)
}
