package config

import (
	"fmt"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestMappingAndGroupKey(t *testing.T) {
	c, err := Load("testdata/valid/mapping.yaml", lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	wantMapping := map[string]string{
		"title":         "{{.data.issue.shortId}}: {{.data.issue.title}}",
		"message":       "{{.data.issue.culprit}}\n{{.data.issue.count}} events, {{.data.issue.userCount}} users\n",
		"dedup_key":     "sentry-{{.data.issue.id}}",
		"severity":      `{{.data.issue.level | default "error"}}`,
		"resolved_when": `{{eq .action "resolved"}}`,
		"link":          `{{get . "data.issue.web_url"}}`,
		// image: "" is left to the default.
	}
	sentry, prom := c.Integrations[0], c.Integrations[1]
	if !reflect.DeepEqual(sentry.Mapping, wantMapping) || sentry.GroupKey != "{{.data.issue.project.slug}}" {
		t.Errorf("sentry: mapping %q, group key %q", sentry.Mapping, sentry.GroupKey)
	}
	if prom.Mapping != nil || prom.GroupKey != "{{.commonLabels.team}}/{{.commonLabels.alertname | lower}}" {
		t.Errorf("prometheus: mapping %q, group key %q", prom.Mapping, prom.GroupKey)
	}

	in := c.OncallIntegrations()
	if !reflect.DeepEqual(in[0].Mapping, wantMapping) || in[0].GroupKey != sentry.GroupKey || in[1].GroupKey != prom.GroupKey {
		t.Errorf("OncallIntegrations: %+v", in)
	}
	// The domain value is a copy: changing it leaves the config alone.
	in[0].Mapping["title"] = "changed"
	if sentry.Mapping["title"] == "changed" {
		t.Error("OncallIntegrations shares the mapping with the config")
	}

	// Written back, the file parses to the same templates.
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("again.yaml", data, lookup(nil))
	if err != nil {
		t.Fatalf("parse marshaled config: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(withoutLines(c), withoutLines(again)) {
		t.Errorf("round trip changed the config:\n%s", data)
	}
}

// PagerDuty's and Opsgenie's acknowledge and resolve carry only the
// sender's key: a group_key template would part them from their incident.
func TestGroupKeyRefusedForSenderKeyedKinds(t *testing.T) {
	for _, kind := range []string{"pagerduty", "opsgenie"} {
		data := "integrations:\n  - name: a\n    kind: " + kind +
			"\n    token: 0123456789abcdef\n    channel: C0A\n    group_key: \"{{ .x }}\"\n"
		_, err := Parse("k.yaml", []byte(data), lookup(nil))
		want := "k.yaml:6: group_key: integrations of kind " + kind +
			" are grouped by the sender's key (dedup_key, alias); remove group_key"
		if fmt.Sprint(err) != want {
			t.Errorf("kind %s with group_key: %v, want %q", kind, err, want)
		}
	}
}
