package integrations

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oncallbot/oncall"
)

// The kind "sns" is an Amazon SNS HTTP(S) subscription: POST
// /integrations/sns/{token} receives SNS's JSON messages (raw message
// delivery must be off, since the envelope carries the signature). Every
// message's signature is verified against the signing certificate of
// SigningCertURL, fetched only over https from sns.<region>.amazonaws.com
// (or .amazonaws.com.cn) and cached by URL; a message that does not verify
// is answered 403 and nothing is queued.
//
//   - SubscriptionConfirmation: the subscription is confirmed by a GET of
//     SubscribeURL (same host rule) and answered 200.
//   - UnsubscribeConfirmation: logged and answered 200.
//   - Notification whose Message is a CloudWatch alarm: one incident per
//     alarm (GroupKey "sns:" + AlarmArn, else AlarmName). NewStateValue ALARM
//     fires with severity error; OK resolves; INSUFFICIENT_DATA (or any
//     other state) fires with severity warning, since missing data may hide
//     a problem but is not one yet. Title is AlarmName, Message
//     NewStateReason and AlarmDescription, Link the alarm in the CloudWatch
//     console; labels alarm, state, region, account, namespace and metric
//     are there for routes.
//   - Any other Notification fires with severity warning: Title is Subject,
//     else the first line of Message; GroupKey "sns:" + TopicArn + ":" +
//     Subject; labels topic, region and account.
//
// A notification is answered 202 once queued, as any other kind; SNS treats
// any 2xx as delivered and retries 5xx.

// SNS message types (the Type member).
const (
	snsNotification             = "Notification"
	snsSubscriptionConfirmation = "SubscriptionConfirmation"
	snsUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

const (
	// snsFetchTimeout bounds a certificate fetch or a subscription
	// confirmation: SNS waits 15s for an answer by default.
	snsFetchTimeout = 5 * time.Second
	// maxSNSCertBytes bounds a signing certificate (SNS's are about 2 KiB).
	maxSNSCertBytes = 64 << 10
	// maxSNSCerts bounds the certificate cache; SNS signs with a handful.
	maxSNSCerts = 64
	// snsDerivedTitleRunes bounds a title taken from a message's first line.
	snsDerivedTitleRunes = 200
	// maxSNSDimensions bounds the CloudWatch dimensions kept (30 at most in
	// CloudWatch).
	maxSNSDimensions = 30
)

// SNSOptions adjusts how the sns kind reaches Amazon SNS.
type SNSOptions struct {
	// Client fetches signing certificates and confirms subscriptions
	// (default: http.DefaultTransport with a timeout). Redirects are never
	// followed, so that only allowed hosts are reached.
	Client *http.Client
	// CertHostAllowed says whether SigningCertURL and SubscribeURL may be
	// fetched from host (host[:port] of the URL; the scheme must be https
	// in any case). The default allows sns.<region>.amazonaws.com and
	// sns.<region>.amazonaws.com.cn.
	CertHostAllowed func(host string) bool
}

// WithSNS sets how the sns kind reaches Amazon SNS (tests serve their own
// signing certificate).
func WithSNS(o SNSOptions) Option {
	return func(h *Handler) {
		if o.Client != nil {
			h.sns.client = noRedirects(o.Client)
		}
		if o.CertHostAllowed != nil {
			h.sns.hostAllowed = o.CertHostAllowed
		}
	}
}

// specialKinds are the kinds under /integrations/ that answer a request
// themselves. It also sets the defaults of what they need, before the
// options run.
func (h *Handler) specialKinds() map[string]kindFunc {
	h.sns = snsConfig{
		client:      noRedirects(&http.Client{Timeout: snsFetchTimeout}),
		hostAllowed: snsHostAllowed,
		certs:       &snsCertCache{keys: map[string]*rsa.PublicKey{}},
	}
	return map[string]kindFunc{"sns": h.serveSNS}
}

// noRedirects returns a copy of c that does not follow redirects.
func noRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// awsRegion is the shape of an AWS region name.
var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// snsHostAllowed allows the hosts SNS serves signing certificates and
// subscription confirmations from: sns.<region>.amazonaws.com(.cn), no port.
func snsHostAllowed(host string) bool {
	var rest string
	switch {
	case strings.HasSuffix(host, ".amazonaws.com"):
		rest = strings.TrimSuffix(host, ".amazonaws.com")
	case strings.HasSuffix(host, ".amazonaws.com.cn"):
		rest = strings.TrimSuffix(host, ".amazonaws.com.cn")
	default:
		return false
	}
	region, ok := strings.CutPrefix(rest, "sns.")
	// A region (us-east-1, us-gov-west-1, cn-north-1), not any label:
	// sns.s3.amazonaws.com is an S3 bucket anyone could own.
	return ok && awsRegion.MatchString(region)
}

// snsConfig is what the sns kind needs beyond the handler.
type snsConfig struct {
	client      *http.Client
	hostAllowed func(host string) bool
	certs       *snsCertCache
}

// snsCertCache holds the public keys of signing certificates by URL.
type snsCertCache struct {
	mu   sync.Mutex
	keys map[string]*rsa.PublicKey
}

func (c *snsCertCache) get(certURL string) (*rsa.PublicKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.keys[certURL]
	return key, ok
}

func (c *snsCertCache) put(certURL string, key *rsa.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= maxSNSCerts {
		for u := range c.keys { // any one: SNS rotates certificates rarely
			delete(c.keys, u)
			break
		}
	}
	c.keys[certURL] = key
}

// errSNSUnavailable marks a failure to reach Amazon SNS that a later
// delivery may not meet: answered 503, which SNS retries.
var errSNSUnavailable = errors.New("amazon SNS unreachable")

// allowedURL reports whether raw is an https URL on an allowed host.
func (c snsConfig) allowedURL(raw string) bool {
	if len(raw) > maxURLBytes {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https" && u.User == nil && u.Host != "" && c.hostAllowed(u.Host)
}

// verify checks m's signature. An error wrapping errSNSUnavailable means
// the signing certificate could not be fetched; any other means m is not
// to be trusted.
func (c snsConfig) verify(ctx context.Context, m snsMessage) error {
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return errors.New("signature is not base64")
	}
	key, err := c.signingKey(ctx, m.SigningCertURL)
	if err != nil {
		return err
	}
	signed := m.stringToSign()
	var hash crypto.Hash
	var digest []byte
	switch m.SignatureVersion {
	case "1":
		sum := sha1.Sum(signed)
		hash, digest = crypto.SHA1, sum[:]
	default: // "2"; parseSNS accepts no other
		sum := sha256.Sum256(signed)
		hash, digest = crypto.SHA256, sum[:]
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return errors.New("signature does not match the message")
	}
	return nil
}

// signingKey returns the public key of the certificate at certURL, from
// the cache or fetched.
func (c snsConfig) signingKey(ctx context.Context, certURL string) (*rsa.PublicKey, error) {
	if !c.allowedURL(certURL) {
		return nil, fmt.Errorf("SigningCertURL %s is not an https URL of Amazon SNS (sns.<region>.amazonaws.com)", quoteShort(certURL))
	}
	if key, ok := c.certs.get(certURL); ok {
		return key, nil
	}
	ctx, cancel := context.WithTimeout(ctx, snsFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL, nil)
	if err != nil {
		return nil, fmt.Errorf("SigningCertURL: %w", err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch signing certificate: %w: %w", errSNSUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("fetch signing certificate: %w: HTTP %d", errSNSUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch signing certificate: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSNSCertBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch signing certificate: %w: %w", errSNSUnavailable, err)
	}
	if len(data) > maxSNSCertBytes {
		return nil, fmt.Errorf("signing certificate larger than %d bytes", maxSNSCertBytes)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("signing certificate is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse signing certificate: %w", err)
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("signing certificate has no RSA key")
	}
	c.certs.put(certURL, key)
	return key, nil
}

// snsMessage is the JSON envelope of every message SNS delivers.
type snsMessage struct {
	Type             string
	MessageID        string
	TopicArn         string
	Subject          string
	hasSubject       bool // Subject is signed only when present
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	SubscribeURL     string // confirmations only
	Token            string // confirmations only
}

// parseSNS decodes and checks an SNS message; its signature is not
// verified yet.
func parseSNS(body []byte) (snsMessage, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return snsMessage{}, err
	}
	var m snsMessage
	fields := []struct {
		key string
		dst *string
	}{
		{"Type", &m.Type}, {"MessageId", &m.MessageID}, {"TopicArn", &m.TopicArn}, {"Subject", &m.Subject},
		{"Message", &m.Message}, {"Timestamp", &m.Timestamp}, {"SignatureVersion", &m.SignatureVersion},
		{"Signature", &m.Signature}, {"SigningCertURL", &m.SigningCertURL}, {"SubscribeURL", &m.SubscribeURL},
		{"Token", &m.Token},
	}
	values := make(map[string]string, len(fields))
	for _, f := range fields {
		if *f.dst, err = doc.str(f.key); err != nil {
			return snsMessage{}, err
		}
		values[f.key] = *f.dst
	}
	_, m.hasSubject = doc.member("Subject")

	required := []string{"MessageId", "TopicArn", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"}
	switch m.Type {
	case "":
		return snsMessage{}, inputErrorf("Type", "required: not an Amazon SNS message (is raw message delivery on? turn it off)")
	case snsNotification:
	case snsSubscriptionConfirmation, snsUnsubscribeConfirmation:
		required = append(required, "SubscribeURL", "Token")
	default:
		return snsMessage{}, inputErrorf("Type", "unknown message type %s (want Notification, SubscriptionConfirmation or UnsubscribeConfirmation)", quoteShort(m.Type))
	}
	if _, ok := doc.member("Message"); !ok {
		return snsMessage{}, inputErrorf("Message", "required")
	}
	for _, key := range required {
		if values[key] == "" {
			return snsMessage{}, inputErrorf(key, "required")
		}
	}
	if m.SignatureVersion != "1" && m.SignatureVersion != "2" {
		return snsMessage{}, inputErrorf("SignatureVersion", "must be 1 or 2, got %s", quoteShort(m.SignatureVersion))
	}
	return m, nil
}

// stringToSign is what SNS signs: name and value lines of the members of
// the message's type, in byte order of their names.
func (m snsMessage) stringToSign() []byte {
	var b []byte
	add := func(name, value string) {
		b = append(b, name...)
		b = append(b, '\n')
		b = append(b, value...)
		b = append(b, '\n')
	}
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == snsNotification {
		if m.hasSubject {
			add("Subject", m.Subject)
		}
		add("Timestamp", m.Timestamp)
	} else {
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b
}

// serveSNS answers one SNS message (the sns kindFunc).
func (h *Handler) serveSNS(w http.ResponseWriter, r *http.Request, in oncall.Integration, body []byte, now time.Time) int {
	log := h.log.With("kind", "sns", "integration", in.Name, "remote", r.RemoteAddr)
	m, err := parseSNS(body)
	if err != nil {
		log.Info("ingest rejected: bad payload", "err", err)
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	log = log.With("type", m.Type, "topic", m.TopicArn, "message_id", m.MessageID)
	if err := h.sns.verify(r.Context(), m); err != nil {
		if errors.Is(err, errSNSUnavailable) {
			log.Warn("sns message not verified: signing certificate unavailable", "err", err)
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			return writeError(w, http.StatusServiceUnavailable, "signing certificate unavailable, retry")
		}
		log.Warn("ingest rejected: sns message signature not verified", "err", err)
		return writeError(w, http.StatusForbidden, err.Error())
	}

	switch m.Type {
	case snsSubscriptionConfirmation:
		return h.confirmSNS(r.Context(), w, log, m)
	case snsUnsubscribeConfirmation:
		log.Info("sns subscription ended: unsubscribe confirmation received")
		return writeJSON(w, http.StatusOK, map[string]string{"status": "unsubscribe confirmation received"})
	}
	b := snsBatch(m, now)
	id, err := h.Accept(r.Context(), in, "sns", b, body, now)
	if err != nil {
		return writeAcceptError(w, err)
	}
	return writeAccepted(w, id, len(b.Alerts))
}

// confirmSNS confirms a subscription by visiting its SubscribeURL.
func (h *Handler) confirmSNS(ctx context.Context, w http.ResponseWriter, log *slog.Logger, m snsMessage) int {
	if !h.sns.allowedURL(m.SubscribeURL) {
		log.Warn("sns subscription not confirmed: SubscribeURL not on an Amazon SNS host", "url", m.SubscribeURL)
		return writeError(w, http.StatusForbidden, "SubscribeURL is not an https URL of Amazon SNS (sns.<region>.amazonaws.com)")
	}
	ctx, cancel := context.WithTimeout(ctx, snsFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.SubscribeURL, nil)
	if err != nil {
		return writeError(w, http.StatusBadRequest, "SubscribeURL: "+err.Error())
	}
	resp, err := h.sns.client.Do(req)
	if err != nil {
		log.Warn("sns subscription not confirmed: visit SubscribeURL", "err", err)
		return writeError(w, http.StatusBadGateway, "confirm subscription: Amazon SNS unreachable")
	}
	// Drained so the connection is reused; the answer says nothing we need.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxSNSCertBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.Warn("sns subscription not confirmed: SubscribeURL answered", "status", resp.StatusCode)
		return writeError(w, http.StatusBadGateway, fmt.Sprintf("confirm subscription: Amazon SNS answered HTTP %d", resp.StatusCode))
	}
	log.Info("sns subscription confirmed")
	return writeJSON(w, http.StatusOK, map[string]string{"status": "subscription confirmed"})
}

// snsBatch is the batch of a verified notification. It never fails: the
// message comes from AWS, and an alert that does not look as expected is
// still an alert.
func snsBatch(m snsMessage, now time.Time) oncall.AlertBatch {
	if a, ok := parseCloudWatchAlarm(m.Message); ok {
		return a.batch(m, now)
	}
	return snsGenericBatch(m, now)
}

// cloudWatchAlarm is the Message CloudWatch publishes when an alarm changes
// state, sanitized.
type cloudWatchAlarm struct {
	name, description, account string
	newState, oldState, reason string
	stateChangeTime            string
	region, arn                string
	metricName, namespace      string
	dimensions                 []string // "name=value"
}

// parseCloudWatchAlarm reads message as a CloudWatch alarm: a JSON object
// with string AlarmName and NewStateValue. Other members of the wrong type
// count as absent.
func parseCloudWatchAlarm(message string) (cloudWatchAlarm, bool) {
	if !startsObject([]byte(message)) {
		return cloudWatchAlarm{}, false
	}
	doc, err := parseDocument([]byte(message))
	if err != nil {
		return cloudWatchAlarm{}, false
	}
	str := func(o object, key string, maxRunes int) string {
		s, _ := o.str(key)
		return strings.TrimSpace(clean(s, maxRunes))
	}
	a := cloudWatchAlarm{
		name:            str(doc, "AlarmName", maxTitleRunes),
		newState:        str(doc, "NewStateValue", maxLabelValueRunes),
		description:     str(doc, "AlarmDescription", maxMessageRunes),
		account:         str(doc, "AWSAccountId", maxLabelValueRunes),
		oldState:        str(doc, "OldStateValue", maxLabelValueRunes),
		reason:          str(doc, "NewStateReason", maxMessageRunes),
		stateChangeTime: str(doc, "StateChangeTime", maxLabelValueRunes),
		region:          str(doc, "Region", maxLabelValueRunes),
		arn:             str(doc, "AlarmArn", maxURLBytes),
	}
	if a.name == "" || a.newState == "" {
		return cloudWatchAlarm{}, false
	}
	if trigger, ok, err := doc.obj("Trigger"); ok && err == nil {
		a.metricName = str(trigger, "MetricName", maxLabelValueRunes)
		a.namespace = str(trigger, "Namespace", maxLabelValueRunes)
		dims, _, _ := trigger.arr("Dimensions")
		for i, raw := range dims[:min(len(dims), maxSNSDimensions)] {
			d, err := parseObject(indexPath(trigger.at("Dimensions"), i), raw)
			if err != nil {
				continue
			}
			if name := str(d, "name", maxLabelValueRunes); name != "" {
				a.dimensions = append(a.dimensions, name+"="+str(d, "value", maxLabelValueRunes))
			}
		}
	}
	return a, true
}

func (a cloudWatchAlarm) batch(m snsMessage, now time.Time) oncall.AlertBatch {
	status, severity := oncall.AlertFiring, oncall.SeverityError
	switch a.newState {
	case "ALARM":
	case "OK":
		status = oncall.AlertResolved
	default: // INSUFFICIENT_DATA: the metric is missing, which may hide a problem
		severity = oncall.SeverityWarning
	}
	arn, ok := parseARN(a.arn)
	if !ok {
		arn, _ = parseARN(m.TopicArn) // alarms notify topics of their own region
	}
	id := firstNonEmpty(a.arn, a.name)
	labels := snsLabels(map[string]string{
		"alarm":     a.name,
		"state":     a.newState,
		"region":    firstNonEmpty(arn.region, a.region),
		"account":   firstNonEmpty(a.account, arn.account),
		"namespace": a.namespace,
		"metric":    a.metricName,
	})
	message := a.reason
	if a.description != "" {
		if message != "" {
			message += "\n\n"
		}
		message += a.description
	}
	message = clean(message, maxMessageRunes)
	link := cloudWatchConsoleURL(arn, a.name)
	alert := oncall.Alert{
		Fingerprint: boundedID(id),
		Status:      status,
		Title:       a.name,
		Message:     message,
		Severity:    severity,
		Link:        link,
		Labels:      labels,
		Annotations: snsLabels(map[string]string{
			"description": a.description,
			"reason":      a.reason,
			"old_state":   a.oldState,
			"dimensions":  clean(strings.Join(a.dimensions, ", "), maxMessageRunes),
		}),
	}
	at := snsTime(a.stateChangeTime, now)
	if status == oncall.AlertFiring {
		alert.StartsAt = at
	} else {
		alert.EndsAt = at
	}
	return oneAlertBatch("sns:"+boundedID(id), alert)
}

// snsGenericBatch is the batch of a notification that is not a CloudWatch
// alarm: it fires; nothing resolves it but a person.
func snsGenericBatch(m snsMessage, now time.Time) oncall.AlertBatch {
	message := clean(m.Message, maxMessageRunes)
	arn, _ := parseARN(m.TopicArn)
	title := strings.TrimSpace(clean(m.Subject, maxTitleRunes))
	if title == "" {
		title = truncate(firstLine(message), snsDerivedTitleRunes)
	}
	if title == "" {
		title = strings.TrimSpace(clean("Amazon SNS notification "+arn.resource, maxTitleRunes))
	}
	groupKey := "sns:" + boundedID(m.TopicArn+":"+m.Subject)
	fingerprint := boundedID(m.MessageID) // SNS retries a delivery with its MessageId
	if strings.TrimSpace(fingerprint) == "" {
		fingerprint = groupKey
	}
	labels := snsLabels(map[string]string{
		"topic":   arn.resource,
		"region":  arn.region,
		"account": arn.account,
	})
	return oneAlertBatch(groupKey, oncall.Alert{
		Fingerprint: fingerprint,
		Status:      oncall.AlertFiring,
		Title:       title,
		Message:     message,
		Severity:    oncall.SeverityWarning,
		Labels:      labels,
		StartsAt:    snsTime(m.Timestamp, now),
	})
}

// snsLabels returns the non-empty values of m, cleaned, or nil for none.
func snsLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v = strings.TrimSpace(clean(v, maxLabelValueRunes)); v != "" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// firstLine returns the first line of s that is not blank, trimmed.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// snsTime parses the times SNS and CloudWatch write (RFC 3339, or
// CloudWatch's "2006-01-02T15:04:05.000-0700"), in UTC; fallback if it
// cannot.
func snsTime(s string, fallback time.Time) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t = t.UTC(); t.Year() >= 1 && t.Year() <= 9999 { // JSON cannot encode others
				return t
			}
		}
	}
	return fallback.UTC()
}

// arn is an Amazon Resource Name: arn:partition:service:region:account:resource.
type arn struct {
	partition, region, account, resource string
}

func parseARN(s string) (arn, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return arn{}, false
	}
	return arn{partition: parts[1], region: parts[3], account: parts[4], resource: parts[5]}, true
}

// cloudWatchConsoleURL links to the alarm name in the CloudWatch console of
// the alarm's partition and region, "" when they are unknown.
func cloudWatchConsoleURL(a arn, name string) string {
	var host string
	switch a.partition {
	case "aws":
		host = "console.aws.amazon.com"
	case "aws-cn":
		host = "console.amazonaws.cn"
	case "aws-us-gov":
		host = "console.amazonaws-us-gov.com"
	default:
		return ""
	}
	if a.region == "" {
		return ""
	}
	link := "https://" + host + "/cloudwatch/home?region=" + url.QueryEscape(a.region) +
		"#alarmsV2:alarm/" + url.PathEscape(name)
	if checkURL(link) != "" {
		return ""
	}
	return link
}
