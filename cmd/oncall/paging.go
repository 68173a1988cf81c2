package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/integrations/twilio"
)

// twilioOptions is how serve reaches Twilio (env TWILIO_*).
type twilioOptions struct {
	AccountSID string
	AuthToken  string
	From       string
	APIURL     string // optional base URL, for proxies and tests
}

func twilioFromEnv(lookup env) twilioOptions {
	return twilioOptions{
		AccountSID: lookup.get("TWILIO_ACCOUNT_SID", ""),
		AuthToken:  lookup.get("TWILIO_AUTH_TOKEN", ""),
		From:       lookup.get("TWILIO_FROM_NUMBER", ""),
		APIURL:     lookup.get("TWILIO_API_URL", ""),
	}
}

// configured says whether Twilio is on; some of the settings without the
// others is a mistake worth stopping for.
func (o twilioOptions) configured() (bool, error) {
	set := map[string]bool{
		"TWILIO_ACCOUNT_SID": o.AccountSID != "",
		"TWILIO_AUTH_TOKEN":  o.AuthToken != "",
		"TWILIO_FROM_NUMBER": o.From != "",
	}
	var missing []string
	for _, name := range []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"} {
		if !set[name] {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case 0:
		return true, nil
	case len(set):
		return false, nil
	}
	return false, errors.New("Twilio is half configured: set " + strings.Join(missing, " and ") +
		" too (or unset all TWILIO_* to page by Slack only)")
}

// twilioClient returns the Twilio client of o.
func (o twilioOptions) client() (*twilio.Client, error) {
	return twilio.NewClient(o.AccountSID, o.AuthToken, o.APIURL, &http.Client{Timeout: 15 * time.Second})
}

// phoneBook finds the person a phone number belongs to, as an actor: their
// Slack user when the bot can tell, else the number.
type phoneBook struct {
	cfg       *config.Config
	slackUser func(ctx context.Context, person string) (string, bool) // nil without Slack
}

func (p phoneBook) ActorForPhone(ctx context.Context, phone string) (oncall.Actor, bool) {
	want := normalizePhone(phone)
	if want == "" {
		return "", false
	}
	for _, u := range p.cfg.Users {
		if normalizePhone(u.Phone) != want {
			continue
		}
		if p.slackUser != nil {
			ref := u.Slack
			if ref == "" {
				ref = u.Email
			}
			if id, ok := p.slackUser(ctx, ref); ok {
				return oncall.SlackActor(id), true
			}
		}
		if u.Slack != "" {
			return oncall.SlackActor(u.Slack), true
		}
		return oncall.Actor("phone:" + want), true
	}
	return "", false
}

// normalizePhone keeps the digits of a number and its leading "+", so that
// "+49 151 0000 0001" and "+4915100000001" are one number.
func normalizePhone(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		if r >= '0' && r <= '9' || r == '+' && i == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// logPagingSetup says once at start how people can be paged, so that an
// operator sees a missing channel before the night it matters.
func logPagingSetup(log *slog.Logger, cfg *config.Config, slackOn, twilioOn bool, publicURL string) {
	var phoneRules int
	for _, u := range cfg.Users {
		for _, r := range append(append([]config.NotifyRule(nil), u.Notify...), u.Important...) {
			if r.Channel == config.NotifySMS || r.Channel == config.NotifyCall {
				phoneRules++
			}
		}
	}
	switch {
	case !twilioOn && phoneRules > 0:
		log.Warn("users' notification rules ask for SMS or calls but Twilio is not configured (TWILIO_*): those pages fail and fall back to Slack",
			"rules", phoneRules)
	case twilioOn && publicURL == "":
		log.Warn("ONCALL_PUBLIC_URL is not set: Twilio cannot reach this server, so SMS replies, keypresses and delivery receipts are not received")
	}
	if !slackOn && len(cfg.EscalationChains) > 0 {
		log.Warn("Slack is not configured: Slack pages fail (and fall back to SMS or calls where the user has them)")
	}
}
