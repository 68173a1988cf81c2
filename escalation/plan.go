package escalation

import (
	"fmt"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
)

// DefaultPlan is the notification plan of a person the config gives none:
// a Slack message at once.
func DefaultPlan() []oncall.NotifyRule {
	return []oncall.NotifyRule{{Channel: oncall.NotifySlack}}
}

// Plans gives each person their notification plan from the config.
type Plans struct {
	cfg *config.Config
}

// NewPlans returns the plans of the users of cfg.
func NewPlans(cfg *config.Config) *Plans { return &Plans{cfg: cfg} }

// Plan returns the rules person is paged by for an incident of severity
// sev: the user's important rules for a critical incident if they have
// some, else their default rules, else DefaultPlan. SMS and calls are left
// out for a user without a phone number; a plan left with no channel is
// DefaultPlan.
func (p *Plans) Plan(person string, sev oncall.Severity) []oncall.NotifyRule {
	u, _ := p.cfg.User(person)
	rules := u.Notify
	if sev == oncall.SeverityCritical && len(u.Important) > 0 {
		rules = u.Important
	}
	var out []oncall.NotifyRule
	channels := 0
	for _, r := range rules {
		ch := oncall.NotifyChannel(r.Channel)
		if (ch == oncall.NotifySMS || ch == oncall.NotifyCall) && u.Phone == "" {
			continue
		}
		if ch != "" {
			channels++
		}
		out = append(out, oncall.NotifyRule{Channel: ch, Wait: time.Duration(r.Wait)})
	}
	if channels == 0 {
		return DefaultPlan()
	}
	return out
}

// Phone returns the phone number of person from the config, "" if none.
func (p *Plans) Phone(person string) string {
	u, _ := p.cfg.User(person)
	return u.Phone
}

// personDeliveries follows a person's plan from at: each channel is paged
// after the waits before it. The same channel used again in the plan gets
// ":N" on its key (N from 2), so that every page has its own key.
func personDeliveries(incidentID int64, step, repeat int, person string, rules []oncall.NotifyRule,
	at time.Time) []oncall.Delivery {
	var (
		out  []oncall.Delivery
		uses = map[oncall.NotifyChannel]int{}
	)
	due := at
	for _, r := range rules {
		if r.Channel == "" {
			due = due.Add(r.Wait)
			continue
		}
		uses[r.Channel]++
		out = append(out, newDelivery(incidentID, step, repeat, person, r.Channel, uses[r.Channel], due))
	}
	return out
}

func newDelivery(incidentID int64, step, repeat int, person string, ch oncall.NotifyChannel, use int,
	due time.Time) oncall.Delivery {
	key := DeliveryKey(incidentID, step, repeat, person, ch)
	if use > 1 {
		key = fmt.Sprintf("%s:%d", key, use)
	}
	return oncall.Delivery{
		Key: key, IncidentID: incidentID, Step: step, Repeat: repeat, Person: person, Channel: ch,
		DueAt: due, Status: oncall.DeliveryPending,
	}
}

// DeliveryKey is the unique key of the first page of person by ch at a
// step of a pass of an incident's chain.
func DeliveryKey(incidentID int64, step, repeat int, person string, ch oncall.NotifyChannel) string {
	return fmt.Sprintf("%d:%d:%d:%s:%s", incidentID, step, repeat, person, ch)
}
