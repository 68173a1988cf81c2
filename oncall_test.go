package oncall

import "testing"

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		in   string
		want Severity
		ok   bool
	}{
		{"critical", SeverityCritical, true},
		{" P1 ", SeverityCritical, true},
		{"HIGH", SeverityError, true},
		{"warn", SeverityWarning, true},
		{"average", SeverityWarning, true},
		{"info", SeverityInfo, true},
		{"p5", SeverityInfo, true},
		{"", "", false},
		{"catastrophic", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseSeverity(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseAction(t *testing.T) {
	for _, a := range []Action{ActionAcknowledge, ActionUnacknowledge, ActionResolve, ActionReopen, ActionEscalate} {
		if got, ok := ParseAction(string(a)); !ok || got != a {
			t.Errorf("ParseAction(%q) = %q, %v", a, got, ok)
		}
	}
	for _, s := range []string{"", "ack", "Resolve", "snooze"} {
		if got, ok := ParseAction(s); ok {
			t.Errorf("ParseAction(%q) = %q, want not ok", s, got)
		}
	}
}

func TestActorSlackUser(t *testing.T) {
	tests := []struct {
		actor Actor
		id    string
		ok    bool
	}{
		{SlackActor("U0123"), "U0123", true},
		{ActorSource, "", false},
		{ActorSystem, "", false},
		{Actor("slack:"), "", false},
	}
	for _, tt := range tests {
		id, ok := tt.actor.SlackUser()
		if id != tt.id || ok != tt.ok {
			t.Errorf("%q.SlackUser() = %q, %v; want %q, %v", tt.actor, id, ok, tt.id, tt.ok)
		}
	}
}
