package escalation

import (
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
)

// ChainsFromConfig returns the escalation chains of a config by name.
// The config has no keys for AutoResolve and AckTimeout yet; they stay
// zero (off).
func ChainsFromConfig(cfg *config.Config) map[string]oncall.EscalationChain {
	chains := make(map[string]oncall.EscalationChain, len(cfg.EscalationChains))
	for _, c := range cfg.EscalationChains {
		chain := oncall.EscalationChain{Name: c.Name, Repeat: c.Repeat}
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
