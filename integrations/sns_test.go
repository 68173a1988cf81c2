package integrations

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
)

const snsTestToken = "sns-secret-4d1e"

// snsHosts are the hosts the fake SNS answers for: the tests' messages
// name real SNS hosts, and the fake's TLS certificate covers them.
var snsHosts = []string{
	"sns.eu-west-1.amazonaws.com", "sns.us-east-1.amazonaws.com", "sns.cn-north-1.amazonaws.com.cn",
	"sns.eu-west-1.amazonaws.com.evil.example", "evil.example", "certs.test",
}

// snsKeys are the tests' SNS signing key and certificate, and the TLS
// certificate of the fake SNS. RSA keys are slow to generate: once.
type snsKeys struct {
	signer  *rsa.PrivateKey
	certPEM []byte
	tls     tls.Certificate
}

var testSNSKeys = sync.OnceValues(func() (*snsKeys, error) {
	signer, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &signer.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tlsTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "fake sns"},
		DNSNames:     snsHosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	tlsDER, err := x509.CreateCertificate(rand.Reader, tlsTmpl, tlsTmpl, &tlsKey.PublicKey, tlsKey)
	if err != nil {
		return nil, err
	}
	return &snsKeys{
		signer:  signer,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		tls:     tls.Certificate{Certificate: [][]byte{tlsDER}, PrivateKey: tlsKey},
	}, nil
})

// fakeSNS serves signing certificates and subscription confirmations over
// TLS for every host of snsHosts, and records the requests it gets.
type fakeSNS struct {
	keys     *snsKeys
	srv      *httptest.Server
	mu       sync.Mutex
	requests []string // "host/path?query"
}

func newFakeSNS(t *testing.T) *fakeSNS {
	t.Helper()
	keys, err := testSNSKeys()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	f := &fakeSNS{keys: keys}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{keys.tls}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSNS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Host+r.URL.RequestURI())
	f.mu.Unlock()
	switch {
	case r.URL.Path == "/missing.pem":
		http.NotFound(w, r)
	case r.URL.Path == "/broken.pem":
		http.Error(w, "internal error", http.StatusInternalServerError)
	case r.URL.Path == "/garbage.pem":
		_, _ = io.WriteString(w, "not a certificate")
	case r.URL.Path == "/redirect.pem":
		http.Redirect(w, r, "https://evil.example/cert.pem", http.StatusFound)
	case strings.HasSuffix(r.URL.Path, ".pem"):
		_, _ = w.Write(f.keys.certPEM)
	case r.URL.Query().Get("Action") == "ConfirmSubscription" && r.URL.Query().Get("Token") != "refused":
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, `<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:eu-west-1:123456789012:ops-alarms:2bcfbf39</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`)
	default:
		http.Error(w, "forbidden", http.StatusForbidden)
	}
}

// client reaches the fake whatever host a URL names, trusting its
// certificate for the hosts of snsHosts only.
func (f *fakeSNS) client() *http.Client {
	c := f.srv.Client()
	tr := c.Transport.(*http.Transport).Clone()
	addr := f.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	c.Transport = tr
	return c
}

// seen returns the requests the fake got so far.
func (f *fakeSNS) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// sign signs msg (an SNS message's members) as SNS does, by its
// SignatureVersion, and returns it encoded. The string to sign is built
// here independently of the code under test.
func (k *snsKeys) sign(t *testing.T, msg map[string]string) []byte {
	t.Helper()
	names := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if msg["Type"] != "Notification" {
		names = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var s strings.Builder
	for _, n := range names {
		if v, ok := msg[n]; ok {
			fmt.Fprintf(&s, "%s\n%s\n", n, v)
		}
	}
	hash, digest := crypto.SHA256, sha256.Sum256([]byte(s.String()))
	d := digest[:]
	if msg["SignatureVersion"] == "1" {
		sum := sha1.Sum([]byte(s.String()))
		hash, d = crypto.SHA1, sum[:]
	}
	sig, err := rsa.SignPKCS1v15(nil, k.signer, hash, d)
	if err != nil {
		t.Fatal(err)
	}
	signed := make(map[string]string, len(msg)+1)
	for n, v := range msg {
		signed[n] = v
	}
	signed["Signature"] = base64.StdEncoding.EncodeToString(sig)
	body, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// snsPublisher records the batches the handler queues.
type snsPublisher struct {
	mu      sync.Mutex
	batches []oncall.AlertBatch
}

func (p *snsPublisher) PublishAlertData(_ context.Context, id, kind string, data []byte) error {
	var b oncall.AlertBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("decode published batch: %w", err)
	}
	if b.ID != id || b.Kind != kind {
		return fmt.Errorf("published id/kind %q/%q, batch holds %q/%q", id, kind, b.ID, b.Kind)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b)
	return nil
}

func (p *snsPublisher) published() []oncall.AlertBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]oncall.AlertBatch(nil), p.batches...)
}

// snsEnv is a Handler for one sns integration in front of a recording
// publisher, reaching the fake SNS.
type snsEnv struct {
	fake *fakeSNS
	pub  *snsPublisher
	srv  *httptest.Server
	logs *syncBuffer
}

// newSNSEnv serves the handler; certHostAllowed is its SNSOptions's (nil:
// the default, Amazon's hosts).
func newSNSEnv(t *testing.T, certHostAllowed func(host string) bool) *snsEnv {
	t.Helper()
	e := &snsEnv{fake: newFakeSNS(t), pub: &snsPublisher{}, logs: &syncBuffer{}}
	o := SNSOptions{Client: e.fake.client(), CertHostAllowed: certHostAllowed}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := []oncall.Integration{{Name: "cloudwatch", Kind: "sns", Token: snsTestToken, Channel: "C0AWS"}}
	h := NewHandler(in, e.pub, log, nil, WithSNS(o))
	mux := http.NewServeMux()
	h.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *snsEnv) post(t *testing.T, body []byte) response {
	t.Helper()
	resp, err := e.srv.Client().Post(e.srv.URL+"/integrations/sns/"+snsTestToken, "text/plain; charset=UTF-8", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// readSNSMessage reads a golden input: an SNS message whose Signature the
// test computes.
func readSNSMessage(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]string
	if err := json.Unmarshal(data, &msg); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return msg
}

// TestSNSGolden signs every testdata/sns/*.json, posts it and compares
// the answer, the batch queued and the subscription confirmations made
// with the .golden file next to it.
func TestSNSGolden(t *testing.T) {
	e := newSNSEnv(t, nil)
	inputs, err := filepath.Glob(filepath.Join("testdata", "sns", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("golden inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".json"), func(t *testing.T) {
			msg := readSNSMessage(t, in)
			body := e.fake.keys.sign(t, msg)
			before, seenBefore := len(e.pub.published()), len(e.fake.seen())
			r := e.post(t, body)

			var out bytes.Buffer
			fmt.Fprintf(&out, "HTTP %d\n", r.code)
			if r.code != http.StatusAccepted {
				out.Write(r.body)
			}
			for _, req := range e.fake.seen()[seenBefore:] {
				if !strings.Contains(req, ".pem") { // fetched once, by whichever test comes first
					fmt.Fprintf(&out, "GET https://%s\n", req)
				}
			}
			batches := e.pub.published()[before:]
			switch {
			case msg["Type"] != "Notification" && len(batches) != 0:
				t.Errorf("%s queued %d batches, want none", msg["Type"], len(batches))
			case msg["Type"] == "Notification" && len(batches) != 1:
				t.Fatalf("notification queued %d batches, want 1; answer %d %s", len(batches), r.code, r.body)
			case msg["Type"] == "Notification":
				b := batches[0]
				if id := accepted(t, r, len(b.Alerts)); b.ID != id {
					t.Errorf("queued batch %q, answered %q", b.ID, id)
				}
				if b.Integration != "cloudwatch" || b.Kind != "sns" || b.ReceivedAt.IsZero() {
					t.Errorf("batch integration/kind/received_at = %q/%q/%s", b.Integration, b.Kind, b.ReceivedAt)
				}
				if !sameJSON(t, b.Raw, body) {
					t.Errorf("raw %s, want the request body", b.Raw)
				}
				checkBatch(t, b)
				b.ID, b.ReceivedAt, b.Raw = "", time.Time{}, nil
				data, err := json.MarshalIndent(b, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				out.Write(data)
				out.WriteByte('\n')
			}
			golden.Check(t, strings.TrimSuffix(in, ".json")+".golden", out.Bytes())
		})
	}
	if logs := e.logs.String(); !strings.Contains(logs, `msg="sns subscription confirmed"`) ||
		!strings.Contains(logs, "topic=arn:aws:sns:eu-west-1:123456789012:ops-alarms") {
		t.Errorf("subscription confirmation not logged with its topic:\n%s", logs)
	}
}

// TestSNSRejects checks that every message not verified, or not to be
// trusted, is refused and nothing is queued or confirmed.
func TestSNSRejects(t *testing.T) {
	e := newSNSEnv(t, nil)
	alarm := readSNSMessage(t, filepath.Join("testdata", "sns", "alarm.json"))
	confirmation := readSNSMessage(t, filepath.Join("testdata", "sns", "subscription_confirmation.json"))
	with := func(msg map[string]string, changes ...string) map[string]string {
		out := make(map[string]string, len(msg))
		for k, v := range msg {
			out[k] = v
		}
		for i := 0; i+1 < len(changes); i += 2 {
			if changes[i+1] == "<delete>" {
				delete(out, changes[i])
			} else {
				out[changes[i]] = changes[i+1]
			}
		}
		return out
	}
	// afterSigning changes the members of a signed body.
	afterSigning := func(body []byte, changes ...string) []byte {
		var msg map[string]string
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(with(msg, changes...))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	sign := func(msg map[string]string) []byte { return e.fake.keys.sign(t, msg) }
	certURL := func(path string) string { return "https://sns.eu-west-1.amazonaws.com" + path }

	tests := []struct {
		name      string
		body      []byte
		wantCode  int
		wantErr   string
		wantFetch string // a request the fake must have got; "" for none at all
	}{
		{"tampered message", afterSigning(sign(alarm), "Message", `{"AlarmName":"x","NewStateValue":"OK"}`),
			http.StatusForbidden, "signature does not match the message", certURL("/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem")},
		{"subject added", afterSigning(sign(with(alarm, "Subject", "<delete>")), "Subject", "hello"),
			http.StatusForbidden, "signature does not match the message", ""},
		{"version 1 signature sent as version 2", afterSigning(sign(alarm), "SignatureVersion", "2"),
			http.StatusForbidden, "signature does not match the message", ""},
		{"signature not base64", afterSigning(sign(alarm), "Signature", "%%%"),
			http.StatusForbidden, "signature is not base64", ""},
		{"cert URL on another host", sign(with(alarm, "SigningCertURL", "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem")),
			http.StatusForbidden, `SigningCertURL "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem" is not an https URL of Amazon SNS`, ""},
		{"cert URL over http", sign(with(alarm, "SigningCertURL", "http://sns.eu-west-1.amazonaws.com/cert.pem")),
			http.StatusForbidden, "is not an https URL of Amazon SNS", ""},
		{"cert URL with a port", sign(with(alarm, "SigningCertURL", "https://sns.eu-west-1.amazonaws.com:8443/cert.pem")),
			http.StatusForbidden, "is not an https URL of Amazon SNS", ""},
		{"cert URL with user info", sign(with(alarm, "SigningCertURL", "https://evil.example@sns.eu-west-1.amazonaws.com/cert.pem")),
			http.StatusForbidden, "is not an https URL of Amazon SNS", ""},
		{"cert not found", sign(with(alarm, "SigningCertURL", certURL("/missing.pem"))),
			http.StatusForbidden, "fetch signing certificate: HTTP 404", certURL("/missing.pem")},
		{"cert redirects", sign(with(alarm, "SigningCertURL", certURL("/redirect.pem"))),
			http.StatusForbidden, "fetch signing certificate: HTTP 302", certURL("/redirect.pem")},
		{"cert not PEM", sign(with(alarm, "SigningCertURL", certURL("/garbage.pem"))),
			http.StatusForbidden, "signing certificate is not a PEM certificate", certURL("/garbage.pem")},
		{"cert server failing", sign(with(alarm, "SigningCertURL", certURL("/broken.pem"))),
			http.StatusServiceUnavailable, "signing certificate unavailable, retry", certURL("/broken.pem")},
		{"SubscribeURL on another host", sign(with(confirmation, "SubscribeURL", "https://evil.example/?Action=ConfirmSubscription&Token=x")),
			http.StatusForbidden, "SubscribeURL is not an https URL of Amazon SNS", ""},
		{"confirmation refused", sign(with(confirmation, "SubscribeURL", "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=refused")),
			http.StatusBadGateway, "confirm subscription: Amazon SNS answered HTTP 403", "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=refused"},
		{"signature version 3", sign(with(alarm, "SignatureVersion", "3")),
			http.StatusBadRequest, `SignatureVersion: must be 1 or 2, got "3"`, ""},
		{"raw message delivery", []byte(alarm["Message"]),
			http.StatusBadRequest, "Type: required: not an Amazon SNS message (is raw message delivery on? turn it off)", ""},
		{"unknown type", sign(with(alarm, "Type", "Publish")),
			http.StatusBadRequest, `Type: unknown message type "Publish" (want Notification, SubscriptionConfirmation or UnsubscribeConfirmation)`, ""},
		{"confirmation without Token", sign(with(confirmation, "Token", "<delete>")),
			http.StatusBadRequest, "Token: required", ""},
		{"notification without Signature", afterSigning(sign(alarm), "Signature", "<delete>"),
			http.StatusBadRequest, "Signature: required", ""},
		{"empty body", nil, http.StatusBadRequest, "empty body: expected a JSON object", ""},
		{"Message not a string", []byte(`{"Type":"Notification","Message":{"AlarmName":"x"}}`),
			http.StatusBadRequest, "Message: expected string, got object", ""},
		{"malformed JSON", []byte(`{"Type":"Notification",`),
			http.StatusBadRequest, "malformed JSON at byte 23: unexpected end of JSON input", ""},
	}
	// Besides wantFetch, only the certificate of the messages may be fetched
	// (once: it is then cached).
	signingCert := strings.TrimPrefix(alarm["SigningCertURL"], "https://")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seenBefore := len(e.fake.seen())
			r := e.post(t, tc.body)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", r.code, tc.wantCode, r.body)
			}
			if got := errorBody(t, r); !strings.Contains(got, tc.wantErr) {
				t.Errorf("error %q, want it to hold %q", got, tc.wantErr)
			}
			if tc.wantCode == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			seen := e.fake.seen()[seenBefore:]
			want := strings.TrimPrefix(tc.wantFetch, "https://")
			if want != "" && !slices.Contains(seen, want) {
				t.Errorf("fake SNS got %q, want %q among them", seen, want)
			}
			for _, req := range seen {
				if req != want && req != signingCert {
					t.Errorf("fake SNS got %q, want no such request", req)
				}
			}
			if n := len(e.pub.published()); n != 0 {
				t.Fatalf("%d batches queued, want none", n)
			}
		})
	}
}

// TestSNSCertCache checks a signing certificate is fetched once for any
// number of messages it signs.
func TestSNSCertCache(t *testing.T) {
	e := newSNSEnv(t, nil)
	alarm := readSNSMessage(t, filepath.Join("testdata", "sns", "alarm.json"))
	for i := range 3 {
		alarm["MessageId"] = fmt.Sprintf("5a8e1c3f-0b2d-5e9a-9f41-2c7d1e6b8a0%d", i)
		accepted(t, e.post(t, e.fake.keys.sign(t, alarm)), 1)
	}
	fetches := 0
	for _, req := range e.fake.seen() {
		if strings.HasSuffix(req, ".pem") {
			fetches++
		}
	}
	if fetches != 1 {
		t.Errorf("signing certificate fetched %d times for 3 messages, want 1", fetches)
	}
	if n := len(e.pub.published()); n != 3 {
		t.Errorf("%d batches queued, want 3", n)
	}
}

// TestSNSCertHostAllowedOption checks the hosts allowed are those the
// option allows, in place of Amazon's.
func TestSNSCertHostAllowedOption(t *testing.T) {
	e := newSNSEnv(t, func(host string) bool { return host == "certs.test" })
	fake := e.fake
	alarm := readSNSMessage(t, filepath.Join("testdata", "sns", "alarm.json"))
	r := e.post(t, fake.keys.sign(t, alarm))
	if r.code != http.StatusForbidden {
		t.Errorf("cert URL on an SNS host not allowed by the option: status %d, want 403; body %s", r.code, r.body)
	}
	alarm["SigningCertURL"] = "https://certs.test/signing.pem"
	accepted(t, e.post(t, fake.keys.sign(t, alarm)), 1)
	if seen := fake.seen(); len(seen) != 1 || seen[0] != "certs.test/signing.pem" {
		t.Errorf("fake SNS got %q, want only certs.test/signing.pem", seen)
	}
}

func TestSNSHostAllowed(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"sns.us-east-1.amazonaws.com", true},
		{"sns.eu-west-1.amazonaws.com", true},
		{"sns.cn-north-1.amazonaws.com.cn", true},
		{"sns.us-gov-west-1.amazonaws.com", true},
		{"sns.us-east-1.amazonaws.com:443", false},
		{"sns.us-east-1.amazonaws.com.evil.example", false},
		{"evilsns.us-east-1.amazonaws.com", false},
		{"sqs.us-east-1.amazonaws.com", false},
		{"sns.amazonaws.com", false},
		{"sns..amazonaws.com", false},
		{"sns.a.b.amazonaws.com", false},
		{"SNS.US-EAST-1.AMAZONAWS.COM", false},
		{"sns.us-east-1.amazonaws.cn", false},
		{"", false},
		// S3 virtual-hosted buckets named "sns": anyone could own one.
		{"sns.s3.amazonaws.com", false},
		{"sns.s3-us-west-2.amazonaws.com", false},
		{"sns.s3-accelerate.amazonaws.com", false},
		{"sns.ap-southeast-2.amazonaws.com", true},
	}
	for _, tc := range tests {
		if got := snsHostAllowed(tc.host); got != tc.want {
			t.Errorf("snsHostAllowed(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

// TestSNSBatchLenient checks that a verified notification always becomes
// an alert, whatever its Message holds.
func TestSNSBatchLenient(t *testing.T) {
	base := snsMessage{Type: snsNotification, MessageID: "m-1", TopicArn: "arn:aws:sns:us-east-1:123456789012:alerts"}
	tests := []struct {
		name, message, subject string
		wantTitle, wantGroup   string
		wantStatus             oncall.AlertStatus
		wantSeverity           oncall.Severity
	}{
		{"alarm with odd types", `{"AlarmName":"db","NewStateValue":"OK","Trigger":"x","AWSAccountId":1,"StateChangeTime":"soon"}`, "",
			"db", "sns:db", oncall.AlertResolved, oncall.SeverityError},
		{"unknown alarm state", `{"AlarmName":"db","NewStateValue":"PAUSED"}`, "",
			"db", "sns:db", oncall.AlertFiring, oncall.SeverityWarning},
		{"alarm name not a string", `{"AlarmName":5,"NewStateValue":"ALARM"}`, "",
			`{"AlarmName":5,"NewStateValue":"ALARM"}`, "sns:arn:aws:sns:us-east-1:123456789012:alerts:", oncall.AlertFiring, oncall.SeverityWarning},
		{"blank message and subject", " \n ", " ",
			"Amazon SNS notification alerts", "sns:arn:aws:sns:us-east-1:123456789012:alerts: ", oncall.AlertFiring, oncall.SeverityWarning},
		{"NUL subject", "text", "\x00",
			"text", "sns:arn:aws:sns:us-east-1:123456789012:alerts:", oncall.AlertFiring, oncall.SeverityWarning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.Message, m.Subject = tc.message, tc.subject
			b := snsBatch(m, testNow)
			checkBatch(t, b)
			if b.Title != tc.wantTitle || b.GroupKey != tc.wantGroup || b.Status != tc.wantStatus || b.Severity != tc.wantSeverity {
				t.Errorf("batch %q/%q/%s/%s, want %q/%q/%s/%s", b.Title, b.GroupKey, b.Status, b.Severity,
					tc.wantTitle, tc.wantGroup, tc.wantStatus, tc.wantSeverity)
			}
		})
	}
}

// FuzzParseSNS posts arbitrary bodies to the sns kind, whose certificate
// fetches all fail: nothing may be queued or answered 2xx, and a message
// parsed must give a valid batch.
func FuzzParseSNS(f *testing.F) {
	pub := &snsPublisher{}
	failing := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("no network in the fuzz test")
	})}
	in := oncall.Integration{Name: "cloudwatch", Kind: "sns", Token: snsTestToken}
	h := NewHandler([]oncall.Integration{in}, pub, slog.New(slog.DiscardHandler), nil,
		WithSNS(SNSOptions{Client: failing, CertHostAllowed: func(string) bool { return true }}))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		code := h.serveSNS(w, httptest.NewRequest(http.MethodPost, "/integrations/sns/"+snsTestToken, nil), in, body, testNow)
		if code != w.Code || code < 400 {
			t.Fatalf("answered %d (recorded %d), want 4xx or 5xx", code, w.Code)
		}
		var e errorResponse
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("answer %s is not a JSON error", w.Body.Bytes())
		}
		if n := len(pub.published()); n != 0 {
			t.Fatalf("%d batches queued", n)
		}
		m, err := parseSNS(body)
		if err != nil {
			if _, ok := errors.AsType[*InputError](err); !ok || code != http.StatusBadRequest {
				t.Fatalf("parse error %v (%T) answered %d, want an *InputError answered 400", err, err, code)
			}
			return
		}
		if code != http.StatusForbidden && code != http.StatusServiceUnavailable {
			t.Fatalf("parsed message answered %d, want 403 or 503", code)
		}
		if m.Type == snsNotification {
			checkBatch(t, snsBatch(m, testNow))
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
