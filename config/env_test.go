package config

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	env := lookup(map[string]string{
		"TOKEN": "s3cret",
		"EMPTY": "",
		"A_1":   "a",
		"REF":   "${TOKEN}",
	})
	tests := []struct {
		in       string
		want     string
		problems []string
	}{
		{"plain", "plain", nil},
		{"${TOKEN}", "s3cret", nil},
		{"pre-${TOKEN}-post", "pre-s3cret-post", nil},
		{"${A_1}${A_1}", "aa", nil},
		{"${EMPTY}", "", nil},
		{"${REF}", "${TOKEN}", nil}, // values are not expanded again
		{"costs $5", "costs $5", nil},
		{"$TOKEN", "$TOKEN", nil},
		{"$", "$", nil},
		{"a$$b", "a$$b", nil},
		{"$${TOKEN}", "${TOKEN}", nil},
		{"$${TOKEN} ${TOKEN}", "${TOKEN} s3cret", nil},
		{"$$${TOKEN}", "$${TOKEN}", nil},
		{"${MISSING}", "", []string{"environment variable MISSING is not set"}},
		{"${MISSING} ${OTHER}", " ", []string{
			"environment variable MISSING is not set",
			"environment variable OTHER is not set",
		}},
		{"${}", "", []string{`invalid environment variable name "" in ${...}`}},
		{"${1A}", "", []string{`invalid environment variable name "1A" in ${...}`}},
		{"${A-B}", "", []string{`invalid environment variable name "A-B" in ${...}`}},
		{"x${TOKEN", "x${TOKEN", []string{"unterminated ${ (write $${ for a literal ${)"}},
	}
	for _, tt := range tests {
		got, problems := expand(tt.in, env)
		if got != tt.want || !reflect.DeepEqual(problems, tt.problems) {
			t.Errorf("expand(%q) = %q, %q; want %q, %q", tt.in, got, problems, tt.want, tt.problems)
		}
	}
}

// TestExpandOnlyValues checks that ${...} is expanded in scalar values
// wherever they are, and never in keys or comments.
func TestExpandOnlyValues(t *testing.T) {
	data := []byte(`# ${NOT_IN_COMMENTS}
integrations:
  - name: ${NAME}
    kind: webhook
    token: "${TOKEN}"
    channel: C0A
    routes:
      - match: {team: '${TEAM}', "${literal}": x}
        channel: C0B
`)
	c, err := Parse("v.yaml", data, lookup(map[string]string{
		"NAME": "hook", "TOKEN": "0123456789abcdef", "TEAM": "db",
	}))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Integrations[0]
	if in.Name != "hook" || in.Token != "0123456789abcdef" {
		t.Errorf("name %q, token %q", in.Name, in.Token)
	}
	want := map[string]string{"team": "db", "${literal}": "x"}
	if got := in.Routes[0].Match; !reflect.DeepEqual(got, want) {
		t.Errorf("match = %v, want %v", got, want)
	}
}
