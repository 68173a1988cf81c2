package schedule

import (
	"context"
	"testing"
)

// TestSamePerson: a person's feed holds the shifts that name them by the
// config's names, and, once the bot's lookup is known, those naming the
// same Slack user otherwise (a handle, an id for someone the config knows
// by email).
func TestSamePerson(t *testing.T) {
	alice := Person{Email: "alice@example.com", Name: "Alice"}
	c := &Calendars{dir: NewDirectory([]Person{alice})}
	lookup := func(_ context.Context, name string) (string, bool) {
		switch name {
		case "alice@example.com", "@alice", "U0ALICE":
			return "U0ALICE", true
		case "bob@example.com":
			return "U0BOB", true
		}
		return "", false
	}
	tests := []struct {
		name       string
		withLookup bool
		want       bool
	}{
		{"alice@example.com", false, true},
		{"Alice", false, true},
		{"@alice", false, false},
		{"@alice", true, true},
		{"U0ALICE", true, true},
		{"bob@example.com", true, false},
		{"nobody", true, false},
	}
	for _, tt := range tests {
		c.slackUser = nil
		if tt.withLookup {
			c.slackUser = lookup
		}
		if got := c.samePerson(t.Context(), alice)(tt.name); got != tt.want {
			t.Errorf("samePerson(alice)(%q), lookup %v = %v, want %v", tt.name, tt.withLookup, got, tt.want)
		}
	}
}
