package integrations

import "github.com/oncallbot/oncall"

// route returns the first of routes whose every matcher equals the label
// of that name in labels. A label that is absent has the empty value, as in
// Alertmanager's matchers. Values are compared exactly (case included).
func route(routes []oncall.Route, labels map[string]string) (oncall.Route, bool) {
	for _, r := range routes {
		if matches(r.Match, labels) {
			return r, true
		}
	}
	return oncall.Route{}, false
}

func matches(match, labels map[string]string) bool {
	for name, value := range match {
		if labels[name] != value {
			return false
		}
	}
	return true
}
