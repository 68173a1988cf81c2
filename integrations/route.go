package integrations

import "github.com/oncallbot/oncall"

// route returns the first of routes whose matchers all hold for labels: each
// Match label equals its value, each MatchRE label matches its (anchored)
// expression, and each NotMatch label differs from its value. A label that
// is absent has the empty value, as in Alertmanager's matchers. Values are
// compared exactly (case included). A route without matchers matches every
// batch.
func route(routes []oncall.Route, labels map[string]string) (oncall.Route, bool) {
	for _, r := range routes {
		if matches(r, labels) {
			return r, true
		}
	}
	return oncall.Route{}, false
}

func matches(r oncall.Route, labels map[string]string) bool {
	for name, value := range r.Match {
		if labels[name] != value {
			return false
		}
	}
	for name, value := range r.NotMatch {
		if labels[name] == value {
			return false
		}
	}
	for name, re := range r.MatchRE {
		if !re.MatchString(labels[name]) {
			return false
		}
	}
	return true
}
