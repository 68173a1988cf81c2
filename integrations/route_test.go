package integrations

import (
	"testing"

	"github.com/oncallbot/oncall"
)

func TestRoute(t *testing.T) {
	payments := oncall.Route{Match: map[string]string{"team": "payments", "severity": "critical"}, Channel: "C0PAYMENTS", Escalation: "payments"}
	paymentsAny := oncall.Route{Match: map[string]string{"team": "payments"}, Channel: "C0PAYLOW"}
	untagged := oncall.Route{Match: map[string]string{"team": ""}, Escalation: "triage"}
	routes := []oncall.Route{payments, paymentsAny, untagged}
	tests := []struct {
		name   string
		routes []oncall.Route
		labels map[string]string
		want   string // Channel+"/"+Escalation of the route chosen, "" for none
	}{
		{"no routes", nil, map[string]string{"team": "payments"}, ""},
		{"every matcher equal", routes, map[string]string{"team": "payments", "severity": "critical"}, "C0PAYMENTS/payments"},
		{"other labels do not matter", routes, map[string]string{"team": "payments", "severity": "critical", "job": "api"}, "C0PAYMENTS/payments"},
		{"first match wins over a later one", []oncall.Route{paymentsAny, payments}, map[string]string{"team": "payments", "severity": "critical"}, "C0PAYLOW/"},
		{"one matcher differs: the next route", routes, map[string]string{"team": "payments", "severity": "warning"}, "C0PAYLOW/"},
		{"a matched label missing: the next route", routes, map[string]string{"team": "payments"}, "C0PAYLOW/"},
		{"values compare exactly, case included", routes, map[string]string{"team": "Payments", "severity": "critical"}, ""},
		{"empty value matches an absent label", routes, map[string]string{"severity": "critical"}, "/triage"},
		{"empty value matches an empty label", routes, map[string]string{"team": ""}, "/triage"},
		{"no labels", []oncall.Route{payments, paymentsAny}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := route(tt.routes, tt.labels)
			got := ""
			if ok {
				got = r.Channel + "/" + r.Escalation
			}
			if got != tt.want {
				t.Errorf("route = %q (ok %v), want %q", got, ok, tt.want)
			}
		})
	}
}
