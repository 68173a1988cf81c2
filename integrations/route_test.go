package integrations

import (
	"regexp"
	"testing"

	"github.com/oncallbot/oncall"
)

// anchored compiles expr as the config does: matching whole values only.
func anchored(expr string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + expr + `)$`)
}

func TestRoute(t *testing.T) {
	payments := oncall.Route{Match: map[string]string{"team": "payments", "severity": "critical"}, Channel: "C0PAYMENTS", Escalation: "payments"}
	paymentsAny := oncall.Route{Match: map[string]string{"team": "payments"}, Channel: "C0PAYLOW"}
	untagged := oncall.Route{Match: map[string]string{"team": ""}, Escalation: "triage"}
	routes := []oncall.Route{payments, paymentsAny, untagged}

	database := oncall.Route{MatchRE: map[string]*regexp.Regexp{"service": anchored("db-.*|postgres")}, Escalation: "database"}
	notStaging := oncall.Route{NotMatch: map[string]string{"env": "staging"}, Channel: "C0PROD"}
	dbOutsideStaging := oncall.Route{
		MatchRE:  map[string]*regexp.Regexp{"service": anchored("db-.*")},
		NotMatch: map[string]string{"env": "staging"},
		Match:    map[string]string{"team": "data"},
		Channel:  "C0DATA",
	}
	catchAll := oncall.Route{Channel: "C0REST"}
	// An integration's routes followed by the global ones, as
	// config.OncallIntegrations joins them.
	ownThenGlobal := []oncall.Route{paymentsAny, database, catchAll}

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

		{"regexp matches", []oncall.Route{database}, map[string]string{"service": "db-orders"}, "/database"},
		{"regexp alternative", []oncall.Route{database}, map[string]string{"service": "postgres"}, "/database"},
		{"regexp matches whole values only", []oncall.Route{database}, map[string]string{"service": "legacy-db-orders"}, ""},
		{"regexp alternatives are anchored too", []oncall.Route{database}, map[string]string{"service": "postgres-replica"}, ""},
		{"regexp on an absent label sees the empty value", []oncall.Route{database}, map[string]string{"team": "data"}, ""},
		{"regexp that matches the empty value matches an absent label", []oncall.Route{{MatchRE: map[string]*regexp.Regexp{"team": anchored("|none")}, Channel: "C0NOTEAM"}}, nil, "C0NOTEAM/"},

		{"not: another value", []oncall.Route{notStaging}, map[string]string{"env": "production"}, "C0PROD/"},
		{"not: the value", []oncall.Route{notStaging}, map[string]string{"env": "staging"}, ""},
		{"not: an absent label differs", []oncall.Route{notStaging}, map[string]string{"team": "data"}, "C0PROD/"},
		{"not: case differs", []oncall.Route{notStaging}, map[string]string{"env": "Staging"}, "C0PROD/"},
		{"not empty: an absent label does not match", []oncall.Route{{NotMatch: map[string]string{"team": ""}, Channel: "C0TEAM"}}, nil, ""},

		{"every kind of matcher holds", []oncall.Route{dbOutsideStaging}, map[string]string{"service": "db-1", "env": "prod", "team": "data"}, "C0DATA/"},
		{"every kind of matcher: not fails", []oncall.Route{dbOutsideStaging}, map[string]string{"service": "db-1", "env": "staging", "team": "data"}, ""},
		{"every kind of matcher: regexp fails", []oncall.Route{dbOutsideStaging}, map[string]string{"service": "web-1", "env": "prod", "team": "data"}, ""},
		{"every kind of matcher: equals fails", []oncall.Route{dbOutsideStaging}, map[string]string{"service": "db-1", "env": "prod", "team": "web"}, ""},

		{"catch-all matches anything", []oncall.Route{catchAll}, map[string]string{"team": "web"}, "C0REST/"},
		{"catch-all matches no labels", []oncall.Route{catchAll}, nil, "C0REST/"},
		{"own route before global ones", ownThenGlobal, map[string]string{"team": "payments", "service": "db-1"}, "C0PAYLOW/"},
		{"global route when no own one matches", ownThenGlobal, map[string]string{"team": "web", "service": "db-1"}, "/database"},
		{"global catch-all last", ownThenGlobal, map[string]string{"team": "web"}, "C0REST/"},
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

func TestRouteKeepsSeverity(t *testing.T) {
	routes := []oncall.Route{
		{Match: map[string]string{"team": "payments"}, Severity: oncall.SeverityCritical},
		{Channel: "C0REST"},
	}
	if r, ok := route(routes, map[string]string{"team": "payments"}); !ok || r.Severity != oncall.SeverityCritical {
		t.Errorf("route = %+v, %v; want the first route with severity critical", r, ok)
	}
	if r, ok := route(routes, map[string]string{"team": "web"}); !ok || r.Severity != "" || r.Channel != "C0REST" {
		t.Errorf("route = %+v, %v; want the catch-all without a severity", r, ok)
	}
}
