package integrations

import (
	"errors"
	"testing"

	"github.com/oncallbot/oncall"
)

// The golden payloads are under testdata/grafana/ (TestParseGolden); these
// tests cover what goldens show badly: rejections and rules across payloads.

const grafanaAlert = `{"status":"firing","labels":{"alertname":"A"}}`

func grafanaBody(alerts string) string {
	return `{"version":"1","groupKey":"{}:{}","status":"firing","orgId":1,"alerts":[` + alerts + `]}`
}

func TestParseGrafanaBadInput(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"array instead of object", `[]`, "expected a JSON object, got array"},
		{"truncated body", `{"groupKey":"g","alerts":[{"status":"fir`, "malformed JSON at byte 40: unexpected end of JSON input"},
		{"missing alerts", `{"groupKey":"g","status":"firing"}`, "alerts: must hold at least one alert"},
		{"empty alerts", grafanaBody(``), "alerts: must hold at least one alert"},
		{"legacy alerting payload", `{"title":"[Alerting] Test notification","ruleId":0,"state":"alerting","evalMatches":[{"value":100,"metric":"High value"}]}`,
			"alerts: must hold at least one alert (this is a legacy Grafana alerting notification; use unified alerting)"},
		{"alerts not an array", `{"alerts":{"status":"firing"}}`, "alerts: expected array, got object"},
		{"alert not an object", grafanaBody(grafanaAlert + `,7`), "alerts[1]: expected object, got number"},
		{"groupKey not a string", `{"groupKey":1,"alerts":[` + grafanaAlert + `]}`, "groupKey: expected string, got number"},
		{"orgId a string", `{"orgId":"1","alerts":[` + grafanaAlert + `]}`, "orgId: expected number, got string"},
		{"orgId negative", `{"orgId":-1,"alerts":[` + grafanaAlert + `]}`, `orgId: expected a non-negative integer, got "-1"`},
		{"orgId fractional", `{"orgId":1.5,"alerts":[` + grafanaAlert + `]}`, `orgId: expected a non-negative integer, got "1.5"`},
		{"truncatedAlerts a string", `{"truncatedAlerts":"2","alerts":[` + grafanaAlert + `]}`, "truncatedAlerts: expected number, got string"},
		{"bad status", `{"status":"alerting","alerts":[` + grafanaAlert + `]}`, `status: must be firing or resolved, got "alerting"`},
		{"version a number", `{"version":1,"alerts":[` + grafanaAlert + `]}`, "version: expected string, got number"},
		{"state an object", `{"state":{},"alerts":[` + grafanaAlert + `]}`, "state: expected string, got object"},
		{"title a number", `{"title":3,"alerts":[` + grafanaAlert + `]}`, "title: expected string, got number"},
		{"message an array", `{"message":["m"],"alerts":[` + grafanaAlert + `]}`, "message: expected string, got array"},
		{"groupLabels not an object", `{"groupLabels":[],"alerts":[` + grafanaAlert + `]}`, "groupLabels: expected object, got array"},
		{"commonAnnotations value a number", `{"commonAnnotations":{"summary":1},"alerts":[` + grafanaAlert + `]}`, "commonAnnotations.summary: expected string, got number"},
		{"externalURL a boolean", `{"externalURL":true,"alerts":[` + grafanaAlert + `]}`, "externalURL: expected string, got boolean"},
		{"alert without status", grafanaBody(`{"labels":{}}`), "alerts[0].status: required"},
		{"alert status pending", grafanaBody(`{"status":"pending"}`), `alerts[0].status: must be firing or resolved, got "pending"`},
		{"severity label a number", grafanaBody(grafanaAlert + `,{"status":"firing","labels":{"severity":2}}`), "alerts[1].labels.severity: expected string, got number"},
		{"annotation null", grafanaBody(`{"status":"firing","annotations":{"summary":null}}`), "alerts[0].annotations.summary: expected string, got null"},
		{"bad startsAt", grafanaBody(`{"status":"firing","startsAt":"now"}`), `alerts[0].startsAt: expected an RFC 3339 time, got "now"`},
		{"fingerprint a number", grafanaBody(`{"status":"firing","fingerprint":12}`), "alerts[0].fingerprint: expected string, got number"},
		{"silenceURL a number", grafanaBody(`{"status":"firing","silenceURL":1}`), "alerts[0].silenceURL: expected string, got number"},
		{"panelURL an object", grafanaBody(`{"status":"firing","panelURL":{}}`), "alerts[0].panelURL: expected string, got object"},
		{"dashboardURL a number", grafanaBody(`{"status":"firing","dashboardURL":0}`), "alerts[0].dashboardURL: expected string, got number"},
		{"imageURL an array", grafanaBody(`{"status":"firing","imageURL":["x"]}`), "alerts[0].imageURL: expected string, got array"},
		{"values an array", grafanaBody(`{"status":"firing","values":[1]}`), "alerts[0].values: expected object, got array"},
		{"value a string", grafanaBody(`{"status":"firing","values":{"B":"22.5"}}`), "alerts[0].values.B: expected number, got string"},
		{"value null", grafanaBody(`{"status":"firing","values":{"B":null}}`), "alerts[0].values.B: expected number, got null"},
		{"value out of range", grafanaBody(`{"status":"firing","values":{"B":1e400}}`), `alerts[0].values.B: number out of range: "1e400"`},
		{"value with an empty name", grafanaBody(`{"status":"firing","values":{"":1}}`), "alerts[0].values: empty key"},
		{"valueString a number", grafanaBody(`{"status":"firing","valueString":1}`), "alerts[0].valueString: expected string, got number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseGrafana([]byte(tc.body), testNow)
			if err == nil {
				t.Fatalf("parse succeeded, want error %q; batch %+v", tc.wantErr, b)
			}
			if _, ok := errors.AsType[*InputError](err); !ok {
				t.Errorf("error %v is %T, want *InputError", err, err)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tc.wantErr)
			}
		})
	}
}

// TestParseGrafanaStatus checks that a group resolves only when every one
// of its alerts has, whatever the payload's own status says.
func TestParseGrafanaStatus(t *testing.T) {
	const (
		firing   = `{"status":"firing","labels":{"alertname":"A","i":"1"}}`
		resolved = `{"status":"resolved","labels":{"alertname":"A","i":"2"}}`
	)
	tests := []struct {
		name   string
		body   string
		status oncall.AlertStatus
	}{
		{"all firing", `{"status":"firing","alerts":[` + firing + `]}`, oncall.AlertFiring},
		{"all resolved", `{"status":"resolved","alerts":[` + resolved + `,` + resolved + `]}`, oncall.AlertResolved},
		{"one still firing", `{"status":"firing","alerts":[` + resolved + `,` + firing + `]}`, oncall.AlertFiring},
		{"resolved payload with a firing alert", `{"status":"resolved","alerts":[` + resolved + `,` + firing + `]}`, oncall.AlertFiring},
		{"no payload status", `{"alerts":[` + resolved + `]}`, oncall.AlertResolved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseGrafana([]byte(tc.body), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if b.Status != tc.status {
				t.Errorf("status %q, want %q", b.Status, tc.status)
			}
		})
	}
}

// TestParseGrafanaGrouping checks the group keys: Grafana's groupKey when
// sent, else one derived from groupLabels alone.
func TestParseGrafanaGrouping(t *testing.T) {
	key := func(body string) string {
		t.Helper()
		b, err := ParseGrafana([]byte(body), testNow)
		if err != nil {
			t.Fatal(err)
		}
		return b.GroupKey
	}
	if got, want := key(`{"groupKey":"{}:{alertname=\"A\"}","alerts":[`+grafanaAlert+`]}`), `grafana:{}:{alertname="A"}`; got != want {
		t.Errorf("group key %q, want %q", got, want)
	}

	ab := key(`{"groupLabels":{"a":"1","b":"2"},"alerts":[` + grafanaAlert + `]}`)
	ba := key(`{"groupLabels":{"b":"2","a":"1"},"commonLabels":{"c":"3"},"alerts":[{"status":"resolved"}]}`)
	other := key(`{"groupLabels":{"a":"1","b":"3"},"alerts":[` + grafanaAlert + `]}`)
	joined := key(`{"groupLabels":{"a":"1\u0000b"},"alerts":[` + grafanaAlert + `]}`)
	if ab != ba {
		t.Errorf("same group labels: group keys %q and %q, want equal", ab, ba)
	}
	if ab == other || ab == joined {
		t.Errorf("other group labels: group keys %q, %q and %q, want distinct", ab, other, joined)
	}
	if blank := key(`{"groupKey":" ","groupLabels":{"a":"1","b":"2"},"alerts":[` + grafanaAlert + `]}`); blank != ab {
		t.Errorf("blank groupKey: group key %q, want the group labels' %q", blank, ab)
	}
}

// TestParseGrafanaAlertFields checks the per-alert rules: which URL is the
// link, and how values are written.
func TestParseGrafanaAlertFields(t *testing.T) {
	const (
		gen   = "https://g.example.com/alerting/grafana/r1/view"
		dash  = "https://g.example.com/d/abc"
		panel = "https://g.example.com/d/abc?viewPanel=2"
	)
	tests := []struct {
		name   string
		alert  string
		link   string
		values string // the "values" annotation; "" for none
	}{
		{"panel first", `{"status":"firing","generatorURL":"` + gen + `","dashboardURL":"` + dash + `","panelURL":"` + panel + `"}`, panel, ""},
		{"dashboard next", `{"status":"firing","generatorURL":"` + gen + `","dashboardURL":"` + dash + `","panelURL":""}`, dash, ""},
		{"rule last", `{"status":"firing","generatorURL":"` + gen + `","panelURL":"/d/abc"}`, gen, ""},
		{"values sorted by name", `{"status":"firing","values":{"C":1,"B":22.5,"A0":-3}}`, "", "A0=-3, B=22.5, C=1"},
		{"numbers as JSON writes them", `{"status":"firing","values":{"big":2473545728,"exp":1E2,"huge":1e21,"tiny":0.0000001,"zero":0.0}}`, "", "big=2473545728, exp=100, huge=1e+21, tiny=1e-07, zero=0"},
		{"values over valueString", `{"status":"firing","values":{"B":1},"valueString":"[ var='B' value=1 ]"}`, "", "B=1"},
		{"valueString without values", `{"status":"firing","values":{},"valueString":"[ var='B' value=1 ]"}`, "", "[ var='B' value=1 ]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseGrafana([]byte(grafanaBody(tc.alert)), testNow)
			if err != nil {
				t.Fatal(err)
			}
			a := b.Alerts[0]
			if a.Link != tc.link {
				t.Errorf("link %q, want %q", a.Link, tc.link)
			}
			if got, ok := a.Annotations["values"]; got != tc.values || ok != (tc.values != "") {
				t.Errorf("values annotation %q (present %v), want %q", got, ok, tc.values)
			}
		})
	}
}
