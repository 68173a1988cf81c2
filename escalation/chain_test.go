package escalation_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/escalation"
)

func TestChainsFromConfig(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{EscalationChains: []config.EscalationChain{{
		Name: "default", Repeat: 2, Steps: []config.Step{
			{NotifySchedule: "primary"},
			{Wait: config.Duration(5 * time.Minute)},
			{NotifyUsers: []string{"bob@example.com"}},
			{NotifyUsergroup: "S0OPS"},
			{NotifyChannel: "here"},
		},
	}}}
	want := map[string]oncall.EscalationChain{"default": {Name: "default", Repeat: 2, Steps: []oncall.EscalationStep{
		{Kind: oncall.StepNotifySchedule, Schedule: "primary"},
		{Kind: oncall.StepWait, Wait: 5 * time.Minute},
		{Kind: oncall.StepNotifyUsers, Users: []string{"bob@example.com"}},
		{Kind: oncall.StepNotifyUsergroup, Usergroup: "S0OPS"},
		{Kind: oncall.StepNotifyChannel, Mention: "here"},
	}}}
	if got := escalation.ChainsFromConfig(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("ChainsFromConfig:\n got %+v\nwant %+v", got, want)
	}
}

func TestPlans(t *testing.T) {
	t.Parallel()
	plans := escalation.NewPlans(testConfig)
	cases := []struct {
		person string
		sev    oncall.Severity
		want   []oncall.NotifyRule
	}{
		{"UALICE", oncall.SeverityWarning, []oncall.NotifyRule{
			{Channel: oncall.NotifySlack}, {Wait: 5 * time.Minute}, {Channel: oncall.NotifySMS},
			{Wait: 5 * time.Minute}, {Channel: oncall.NotifyCall}}},
		{"ualice", oncall.SeverityCritical, []oncall.NotifyRule{
			{Channel: oncall.NotifyCall}, {Wait: 2 * time.Minute}, {Channel: oncall.NotifySMS},
			{Wait: time.Minute}, {Channel: oncall.NotifyCall}}},
		{"UCAROL", oncall.SeverityCritical, []oncall.NotifyRule{{Wait: time.Minute}, {Channel: oncall.NotifySlack}}},
		{"UBOB", oncall.SeverityWarning, escalation.DefaultPlan()},
		{"nobody@example.com", oncall.SeverityCritical, escalation.DefaultPlan()},
	}
	for _, c := range cases {
		if got := plans.Plan(c.person, c.sev); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Plan(%q, %s) = %+v, want %+v", c.person, c.sev, got, c.want)
		}
	}
}
