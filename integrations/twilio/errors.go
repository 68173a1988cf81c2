package twilio

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twilio/twilio-go/client"
)

// Error is a failed Twilio API request.
type Error struct {
	// Op is what was being done: "send sms", "create call", "list messages".
	Op string
	// Status is the HTTP status (0 when no answer arrived), Code and
	// Message Twilio's error (0 and "" when the body had none).
	Status  int
	Code    int
	Message string
	// RetryAfter is the answer's Retry-After, 0 without one.
	RetryAfter time.Duration
	// Err is the underlying error (twilio-go's, or the transport's).
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Code != 0:
		return fmt.Sprintf("twilio %s: HTTP %d, error %d: %s", e.Op, e.Status, e.Code, e.Message)
	case e.Status != 0 && e.Message != "":
		return fmt.Sprintf("twilio %s: HTTP %d: %s", e.Op, e.Status, e.Message)
	case e.Status != 0:
		return fmt.Sprintf("twilio %s: HTTP %d", e.Op, e.Status)
	default:
		return fmt.Sprintf("twilio %s: %v", e.Op, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

func newError(op string, last *lastResponse, err error) *Error {
	e := &Error{Op: op, Err: err, Status: last.status}
	var rest *client.TwilioRestError
	if errors.As(err, &rest) {
		e.Code, e.Message = rest.Code, rest.Message
		if e.Status == 0 {
			e.Status = rest.Status // an error twilio-go made up before sending
		}
	}
	if last.header != nil {
		e.RetryAfter = parseRetryAfter(last.header.Get("Retry-After"), time.Now())
	}
	return e
}

// permanentCodes are Twilio errors that the same request will meet again:
// the number is wrong, cannot take this kind of message, or refuses it.
var permanentCodes = map[int]bool{
	13223: true, // voice: invalid phone number format
	13224: true, // voice: invalid phone number
	13225: true, // voice: forbidden phone number
	13227: true, // voice: no international permission
	20003: true, // authentication failed
	20404: true, // resource (account) not found
	21211: true, // invalid 'To' phone number
	21212: true, // invalid 'From' phone number
	21214: true, // 'To' number cannot be reached
	21215: true, // no geo permission for this number
	21216: true, // number blocked
	21217: true, // phone number does not appear to be valid
	21219: true, // 'To' not verified (trial account)
	21401: true, // invalid phone number
	21407: true, // number not supported
	21408: true, // no permission for the region
	21421: true, // invalid phone number
	21602: true, // message body required
	21603: true, // 'From' required
	21604: true, // 'To' required
	21606: true, // 'From' is not SMS-capable
	21608: true, // unverified number (trial account)
	21610: true, // recipient unsubscribed (replied STOP)
	21612: true, // cannot route to this number
	21614: true, // 'To' is not a mobile number
	30004: true, // delivery: message blocked
	30005: true, // delivery: unknown destination
	30006: true, // delivery: landline or unreachable carrier
}

// PermanentCode reports whether a Twilio error code, from an API answer or
// a status callback's ErrorCode, means that retrying cannot succeed.
func PermanentCode(code int) bool { return permanentCodes[code] }

// Classify tells the retry logic what to do with an error from this
// package: permanent errors (an invalid or unsubscribed number, bad
// credentials, any other 4xx Twilio will answer the same way) must not be
// retried; anything else (5xx, 429, timeouts, connection errors) may be,
// after retryAfter when Twilio said how long to wait (0 otherwise).
func Classify(err error) (permanent bool, retryAfter time.Duration) {
	if err == nil {
		return false, 0
	}
	var e *Error
	if !errors.As(err, &e) {
		var rest *client.TwilioRestError
		if !errors.As(err, &rest) {
			return false, 0 // no answer from Twilio: worth another try
		}
		e = &Error{Status: rest.Status, Code: rest.Code}
	}
	if PermanentCode(e.Code) {
		return true, 0
	}
	switch {
	case e.Status == 0, e.Status >= 500:
		return false, e.RetryAfter
	case e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout,
		e.Status == http.StatusConflict, e.Status == http.StatusTooEarly:
		return false, e.RetryAfter
	case e.Status >= 400:
		return true, 0
	}
	return false, e.RetryAfter
}
