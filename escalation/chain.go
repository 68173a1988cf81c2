package escalation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
)

// ChainsFromConfig returns the escalation chains of a config by name.
func ChainsFromConfig(cfg *config.Config) map[string]oncall.EscalationChain {
	chains := make(map[string]oncall.EscalationChain, len(cfg.EscalationChains))
	for _, c := range cfg.EscalationChains {
		chain := oncall.EscalationChain{Name: c.Name, Repeat: c.Repeat,
			AutoResolve: time.Duration(c.AutoResolve), AckTimeout: time.Duration(c.AckTimeout)}
		for _, s := range c.Steps {
			chain.Steps = append(chain.Steps, stepFromConfig(s))
		}
		chains[c.Name] = chain
	}
	return chains
}

func stepFromConfig(s config.Step) oncall.EscalationStep {
	return oncall.EscalationStep{
		Kind:      oncall.StepKind(s.Kind()),
		Schedule:  s.NotifySchedule,
		Users:     append([]string(nil), s.NotifyUsers...),
		Usergroup: s.NotifyUsergroup,
		Mention:   s.NotifyChannel,
		Wait:      time.Duration(s.Wait),
	}
}

// walk is the position of a chain being run.
type walk struct {
	step, repeat, baseRepeat int
}

// runChain takes the steps of chain from w at now: each notify step calls
// notify and the walk moves on at once; a wait step ends the run, due again
// after the wait. After the last step the chain runs again from step 0
// while the run has passes left (chain.Repeat after the first). escalate
// (a manual escalation) skips the waits before the next notify step, and
// starts one more pass if the run has none left.
//
// It returns the walk after the run and when it is due next; done reports
// that every pass ran.
func runChain(chain oncall.EscalationChain, w walk, now time.Time, escalate bool,
	notify func(step oncall.EscalationStep, index, repeat int)) (next walk, due time.Time, done bool) {
	skipWaits := escalate
	extraPass := escalate
	for {
		if w.step >= len(chain.Steps) {
			switch {
			case w.repeat-w.baseRepeat < chain.Repeat:
			case extraPass && skipWaits:
				extraPass = false
			default:
				return w, time.Time{}, true
			}
			w.repeat++
			w.step = 0
			continue
		}
		s := chain.Steps[w.step]
		w.step++
		if s.Kind == oncall.StepWait {
			if skipWaits {
				continue
			}
			return w, now.Add(s.Wait), false
		}
		notify(s, w.step-1, w.repeat)
		skipWaits = false
	}
}

// Direct pages (/oncall page) name no configured chain: their incidents'
// escalation is pagePrefix + "user:" + person or + "schedule:" + name.
const (
	pagePrefix     = "page:"
	pageRepeat     = 2
	pageRepeatWait = 5 * time.Minute
)

// PageChain returns the chain of a direct page: the person (or whoever is
// on call for the schedule) paged now and again every pageRepeatWait,
// pageRepeat more times, until someone acknowledges. ok is false for a
// name that is not a direct page's.
func PageChain(name string) (chain oncall.EscalationChain, ok bool) {
	rest, ok := strings.CutPrefix(name, pagePrefix)
	if !ok {
		return oncall.EscalationChain{}, false
	}
	var step oncall.EscalationStep
	switch kind, target, _ := strings.Cut(rest, ":"); {
	case target == "":
		return oncall.EscalationChain{}, false
	case kind == "user":
		step = oncall.EscalationStep{Kind: oncall.StepNotifyUsers, Users: []string{target}}
	case kind == "schedule":
		step = oncall.EscalationStep{Kind: oncall.StepNotifySchedule, Schedule: target}
	default:
		return oncall.EscalationChain{}, false
	}
	return oncall.EscalationChain{Name: name, Repeat: pageRepeat, Steps: []oncall.EscalationStep{
		step, {Kind: oncall.StepWait, Wait: pageRepeatWait},
	}}, true
}

// takenStep is a notify step a run took, with the pages it made.
type takenStep struct {
	step       oncall.EscalationStep
	index      int // in the chain
	pass       int // 0 for the run's first pass
	deliveries []oncall.Delivery
}

// stepEvent is the timeline entry of the steps a chain took by itself,
// after a wait with nobody acknowledging: "escalating to step 3 of
// default: schedule secondary (bob@example.com)".
func stepEvent(chain oncall.EscalationChain, taken []takenStep) oncall.Event {
	var parts []string
	for _, t := range taken {
		what := stepTarget(t.step)
		var people []string
		for _, d := range t.deliveries {
			if !strings.HasPrefix(d.Person, "!") && !slices.Contains(people, d.Person) {
				people = append(people, d.Person)
			}
		}
		switch {
		case t.step.Kind == oncall.StepNotifySchedule && len(people) == 0:
			what += " (nobody on call)"
		case t.step.Kind == oncall.StepNotifySchedule:
			what += " (" + strings.Join(people, ", ") + ")"
		}
		where := fmt.Sprintf("step %d", t.index+1)
		if t.pass > 0 {
			where += fmt.Sprintf(", pass %d", t.pass+1)
		}
		if !strings.HasPrefix(chain.Name, pagePrefix) {
			where += " of " + chain.Name
		}
		parts = append(parts, fmt.Sprintf("%s: %s", where, what))
	}
	return oncall.Event{Kind: oncall.EventEscalationStep, Actor: oncall.ActorSystem,
		Note: "escalating to " + strings.Join(parts, "; ")}
}

// stepTarget names who a notify step pages.
func stepTarget(s oncall.EscalationStep) string {
	switch s.Kind {
	case oncall.StepNotifySchedule:
		return "schedule " + s.Schedule
	case oncall.StepNotifyUsers:
		return strings.Join(s.Users, ", ")
	case oncall.StepNotifyUsergroup:
		return "user group " + s.Usergroup
	case oncall.StepNotifyChannel:
		return "@" + strings.TrimPrefix(s.Mention, "@") + " in the channel"
	}
	return string(s.Kind)
}
