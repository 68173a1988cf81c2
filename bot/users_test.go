package bot

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall/internal/fakeslack"
)

// TestLookupSlackIDTellsFailureFromNobody: a lookup Slack could not answer
// is an error, not "nobody", and is not cached; a refusal that asking
// again will not change is "nobody", as an unknown email is.
func TestLookupSlackIDTellsFailureFromNobody(t *testing.T) {
	fake, err := fakeslack.New(fakeslack.Config{Users: []fakeslack.User{{ID: "U0ALICE", Email: "alice@example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))
	const lookup = "users.lookupByEmail"
	tests := []struct {
		name    string
		person  string
		fail    func()
		wantErr bool
	}{
		{"server error", "alice@example.com", func() { fake.FailNext(lookup, 1, http.StatusServiceUnavailable, 0) }, true},
		{"rate limited", "alice@example.com", func() { fake.FailNext(lookup, 1, http.StatusTooManyRequests, time.Second) }, true},
		{"Slack's own error", "alice@example.com", func() { fake.FailNextError(lookup, 1, "internal_error") }, true},
		{"missing scope", "alice@example.com", func() { fake.FailNextError(lookup, 1, "missing_scope") }, false},
		{"unknown email", "nobody@example.com", func() {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeople(api, nil, func() time.Time { return t0 }, slog.New(slog.DiscardHandler))
			tt.fail()
			id, ok, err := p.lookupSlackID(t.Context(), tt.person)
			if id != "" || ok || (err != nil) != tt.wantErr {
				t.Fatalf("lookupSlackID(%q) = %q, %v, %v; want nobody, error %v", tt.person, id, ok, err, tt.wantErr)
			}
			// The failure is not remembered: asked again, Slack answers.
			wantID := map[string]string{"alice@example.com": "U0ALICE"}[tt.person]
			if id, ok, err := p.lookupSlackID(t.Context(), tt.person); id != wantID || ok != (wantID != "") || err != nil {
				t.Errorf("asked again: %q, %v, %v; want %q", id, ok, err, wantID)
			}
		})
	}

	// SlackUser's answer to a failure stays "nobody".
	p := newPeople(api, nil, func() time.Time { return t0 }, slog.New(slog.DiscardHandler))
	fake.FailNext(lookup, 1, http.StatusServiceUnavailable, 0)
	if id, ok := p.slackID(t.Context(), "alice@example.com"); id != "" || ok {
		t.Errorf("slackID during a failure = %q, %v; want nobody", id, ok)
	}
}
