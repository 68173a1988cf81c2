package schedule

import "testing"

func TestDirectoryFind(t *testing.T) {
	alice := Person{Email: "alice@example.com", Slack: "U0ALICE", Name: "Alice Liddell"}
	bob := Person{Slack: "U0BOB"}
	d := NewDirectory([]Person{alice, bob})
	tests := []struct {
		name string
		want Person
		ok   bool
	}{
		{"alice@example.com", alice, true},
		{" ALICE@example.com ", alice, true},
		{"mailto:alice@example.com", alice, true},
		{"U0ALICE", alice, true},
		{"<@U0ALICE>", alice, true},
		{"@U0BOB", bob, true},
		{"alice liddell", alice, true},
		{"Alice", Person{}, false},
		{"carol@example.com", Person{}, false},
		{"", Person{}, false},
	}
	for _, tt := range tests {
		got, ok := d.Find(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Find(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if bob.Key() != "U0BOB" || alice.Key() != "alice@example.com" {
		t.Errorf("keys: %q, %q", alice.Key(), bob.Key())
	}
}
