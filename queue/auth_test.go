package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
)

// lockedBuffer is a log destination that goroutines share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEmbeddedServerRequiresToken: the embedded server takes only clients
// that present its token, which ClientURL carries and no log line shows.
func TestEmbeddedServerRequiresToken(t *testing.T) {
	var logs lockedBuffer
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	q, err := Open(ctx, Options{DataDir: t.TempDir(), Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(q.Close)

	withToken, err := url.Parse(q.ClientURL())
	if err != nil {
		t.Fatalf("ClientURL %q: %v", redact(q.ClientURL()), err)
	}
	token := withToken.User.Username()
	if _, hasPassword := withToken.User.Password(); len(token) < 20 || hasPassword || withToken.Host == "" {
		t.Fatalf("ClientURL %q, want nats://<token>@host:port with a long token", redact(q.ClientURL()))
	}
	bare := *withToken
	bare.User = nil
	wrong := *withToken
	wrong.User = url.User(strings.Repeat("A", len(token)))

	tests := []struct {
		name   string
		url    string
		wantOK bool
	}{
		{"no token", bare.String(), false},
		{"wrong token", wrong.String(), false},
		{"ClientURL", q.ClientURL(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(tt.url, nats.Timeout(connectTimeout))
			if err == nil {
				defer nc.Close()
			}
			if ok := err == nil; ok != tt.wantOK {
				t.Fatalf("connect: %v; want connected %v", err, tt.wantOK)
			}
			if !tt.wantOK {
				return
			}
			// The stored stream is there for it: the connection is the
			// server's own, not merely accepted.
			if _, err := nc.Request("$JS.API.STREAM.INFO."+streamAlerts, nil, connectTimeout); err != nil {
				t.Errorf("stream info over the token connection: %v", err)
			}
		})
	}
	q.Close()

	out := logs.String()
	if strings.Contains(out, token) {
		t.Errorf("the token appears in the log:\n%s", out)
	}
	// The connection line still names the server, redacted.
	var found bool
	for line := range strings.Lines(out) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "connected to NATS" {
			continue
		}
		found = true
		if want := "nats://xxxxx@" + withToken.Host; rec["url"] != want {
			t.Errorf("connected to NATS at %q, want %q", rec["url"], want)
		}
	}
	if !found {
		t.Errorf("no \"connected to NATS\" line in the log:\n%s", out)
	}
}
