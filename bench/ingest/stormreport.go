package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oncallbot/oncall/integrations"
)

type stormReport struct {
	started, finished time.Time
	args              []string
	opts              options
	machine           machine
	runs              []stormRun
}

func (r stormReport) write(w io.Writer) {
	o := r.opts
	writeHeader(w, "oncall alert storm benchmark", r.args, r.started, r.finished, r.machine)
	span := time.Duration(o.stormAlerts) * time.Second / time.Duration(o.stormRate)
	fmt.Fprintf(w, "## Alert storm: %d alerts for one group in %s\n\n", o.stormAlerts, span)
	fmt.Fprintf(w, "Each run starts a fresh `oncall serve` (new database and NATS directory) with one webhook integration "+
		"and Slack channel of its own. %d senders, each over a keep-alive connection, send %d alerts paced to %d a second "+
		"(request n not before n/%d s), all with the same dedup_key: one group, one incident. "+
		"Then it reads the incident from PostgreSQL every %s, and records the incident message in the fake Slack on "+
		"every change of the fake's state. Times \"after the last 202\" run from reading the last 202 answer to "+
		"the incident's alert_count reaching the number of 202s (its updated_at) and to the first version of the "+
		"Slack message showing that count. The fake Slack does not rate-limit by itself (it answers 429 only when a "+
		"test injects one), so its 429 column counts such answers but cannot catch the bot going beyond Slack's limits: "+
		"the number of calls and the time between versions of the message show its pace.\n\n",
		o.stormSenders, o.stormAlerts, o.stormRate, o.stormRate, stormPoll)

	fmt.Fprintf(w, "### Requests\n\n")
	fmt.Fprintln(w, "| run | rate_limit (a minute) | sent | first request to last answer | 202 | 429 | Retry-After | other | 202 p50 | 202 p99 |")
	fmt.Fprintln(w, "|--|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, run := range r.runs {
		l := run.load
		fmt.Fprintf(w, "| %s | %s | %d | %s | %d | %d | %s | %d | %s | %s |\n", run.name, limitText(run.rateLimit), l.sent,
			secs(l.end.Sub(l.start)), l.accepted, l.limited, cmp.Or(l.retryAfter, "-"), l.other,
			ms(percentile(l.latencies, 0.5)), ms(percentile(l.latencies, 0.99)))
	}
	for _, run := range r.runs {
		if run.load.firstOther != "" {
			fmt.Fprintf(w, "\nFirst other answer, %s: %s\n", run.name, run.load.firstOther)
		}
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "### In PostgreSQL and in Slack\n\n")
	fmt.Fprintln(w, "| run | incidents | alert_count | batches stored | stored at the last answer | incident messages | "+
		"chat.postMessage (incident) | chat.update | thread replies | other posts | Slack 429s | "+
		"alert_count = 202s, after the last 202 | Slack shows it, after the last 202 |")
	fmt.Fprintln(w, "|--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, run := range r.runs {
		s := run.slack
		shownAt, shownOK := firstShowing(run.versions, run.load.accepted)
		fmt.Fprintf(w, "| %s | %d | %d of %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", run.name,
			run.final.incidents, run.final.alerts, run.load.accepted, run.final.batches, run.atEnd.alerts, s.messages,
			s.posts, s.updates, s.replies, s.otherPosts, s.rateLimited,
			after(run.load.lastAccepted, run.storedAt, !run.storedAt.IsZero()),
			after(run.load.lastAccepted, shownAt, shownOK))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "The incident message, version by version (time since the first request: alerts shown):\n\n")
	for _, run := range r.runs {
		fmt.Fprintf(w, "- %s: %s.%s\n", run.name, timeline(run.versions, run.load.start), run.notes())
	}
	fmt.Fprintln(w)
}

// notes says what else a run showed: how close the versions came, the
// last version's latest alert, other posts (the rate limit notice), failed
// Slack calls, a timeout.
func (run stormRun) notes() string {
	var out []string
	if gap, ok := minGap(run.versions); ok {
		out = append(out, "closest versions "+secs(gap)+" apart")
	}
	if n := len(run.versions); n > 0 && run.versions[n-1].title >= 0 {
		out = append(out, fmt.Sprintf("the last version's title names alert %d (they are numbered 0 to %d)",
			run.versions[n-1].title, run.load.sent-1))
	}
	if run.slack.otherPosts > 0 {
		out = append(out, fmt.Sprintf("other posts in the channel: %d, the first: %q", run.slack.otherPosts, run.slack.otherText))
	}
	if run.slack.failed > 0 {
		out = append(out, fmt.Sprintf("Slack calls that failed: %d", run.slack.failed))
	}
	if run.timedOut {
		out = append(out, "**not everything was stored and shown within -drain-timeout**")
	}
	if len(out) == 0 {
		return ""
	}
	s := strings.Join(out, "; ")
	return " " + strings.ToUpper(s[:1]) + s[1:] + "."
}

func timeline(versions []shown, start time.Time) string {
	if len(versions) == 0 {
		return "never posted"
	}
	var parts []string
	for i, v := range versions {
		what := "updated"
		if i == 0 {
			what = "posted"
		}
		parts = append(parts, fmt.Sprintf("%s at %s: %d", what, secs(v.at.Sub(start)), v.count))
	}
	return strings.Join(parts, "; ")
}

// minGap is the shortest time between two consecutive versions.
func minGap(versions []shown) (time.Duration, bool) {
	if len(versions) < 2 {
		return 0, false
	}
	gap := versions[1].at.Sub(versions[0].at)
	for i := 2; i < len(versions); i++ {
		gap = min(gap, versions[i].at.Sub(versions[i-1].at))
	}
	return gap, true
}

func limitText(limit int) string {
	if limit <= 0 {
		return fmt.Sprintf("default (%d)", integrations.DefaultRateLimit)
	}
	return fmt.Sprint(limit)
}

func after(from, to time.Time, ok bool) string {
	if !ok {
		return "not reached"
	}
	return secs(to.Sub(from))
}

func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}
