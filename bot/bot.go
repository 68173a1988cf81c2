// Package bot is the Slack app: it posts each incident as an interactive
// Block Kit message and keeps it up to date, and it takes button clicks and
// slash commands over Socket Mode.
//
// Every Socket Mode envelope is acked at once and handled after, in a
// bounded number of goroutines. A click becomes an incident action with an
// idempotency key derived from the click, so a redelivered envelope changes
// nothing twice; the incident's state machine makes a double click a no-op.
//
// SyncIncident keeps Slack's limits and the incident's message unique:
// posts are paced per channel, updates of a busy incident are coalesced,
// and a post is claimed in the database before it is made, so a crash
// right after it does not post the incident twice.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/storage"
)

const (
	// maxHandlers bounds the envelopes handled at the same time.
	maxHandlers = 16
	// handlerTimeout bounds the work done for one envelope; the work
	// continues through shutdown until done or this long.
	handlerTimeout = 30 * time.Second
)

// Config is how the bot reaches Slack.
type Config struct {
	BotToken string // xoxb-...: the Web API
	AppToken string // xapp-...: Socket Mode
	// APIURL is the Web API base URL; default Slack's. For proxies and tests.
	APIURL string
	Logger *slog.Logger

	// Schedules answers /oncall who, schedule and me, and is checked by
	// swaps and overrides (schedule.Service). Nil: those commands answer
	// that no schedules are configured.
	Schedules Schedules
	// Overrides keeps the overrides made in Slack by /oncall swap and
	// /oncall override (storage.DB). Nil: those commands are unavailable.
	Overrides Overrides
	// Users are the config's users: they map the people schedules name to
	// Slack users.
	Users []UserRef
	// Admins are the people (Slack ids, emails or names, as in the config)
	// who may give away and cancel anyone's shifts.
	Admins []string
	// ScheduleChannels maps a schedule to the Slack channel id that gets
	// a note of its swaps and overrides; schedules without one get none.
	ScheduleChannels map[string]string
	// Feeds gives the calendar feed URLs that /oncall schedule and
	// /oncall me show; nil shows none.
	Feeds Feeds
	// Alerts takes the incidents opened by /oncall page, as alert batches
	// of the integration "slack" (queue.Queue). Nil: /oncall page answers
	// that paging from Slack is unavailable.
	Alerts AlertPublisher
	// Integrations are the names of the config's integrations: those
	// /oncall maintenance puts in maintenance.
	Integrations []string
	// IntegrationChannels maps an integration to the Slack channel id of
	// its incidents, told when /oncall maintenance starts or ends its
	// maintenance; integrations without one are not told.
	IntegrationChannels map[string]string
	// Maintenance keeps the maintenance windows started by /oncall
	// maintenance (storage.DB). Nil: the command answers that it is
	// unavailable.
	Maintenance MaintenanceStore
}

// AlertPublisher queues an alert batch for the processor, which records
// it like any other (queue.Queue). A nil error means the batch is durable.
type AlertPublisher interface {
	PublishAlert(ctx context.Context, b oncall.AlertBatch) error
}

// Feeds are the calendar subscription URLs of schedules and people.
type Feeds interface {
	ScheduleFeed(schedule string) string
	// PersonFeed is the feed of the Slack user's shifts, if the config
	// knows them.
	PersonFeed(ctx context.Context, slackUser string) (string, bool)
}

// IncidentService applies people's actions to incidents
// (escalation.Service). It announces every change, which leads to a
// SyncIncident of the incident.
type IncidentService interface {
	Act(ctx context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (oncall.Incident, error)
	// Silence pages nobody for the incident until until
	// (oncall.UntilResolved: until it is resolved); a zero until ends the
	// silence. A resolved incident is returned unchanged.
	Silence(ctx context.Context, id int64, until time.Time, actor oncall.Actor, key string) (oncall.Incident, error)
}

// Store is the part of the database the bot reads and writes
// (storage.DB).
type Store interface {
	Incident(ctx context.Context, id int64) (oncall.Incident, error)
	SlackMessage(ctx context.Context, incidentID int64) (storage.SlackMessage, bool, error)
	SaveSlackMessage(ctx context.Context, m storage.SlackMessage) error
	UnpostedEvents(ctx context.Context, incidentID int64) ([]storage.UnpostedEvent, error)
	ClaimEventPost(ctx context.Context, eventID int64) error
	MarkEventPosted(ctx context.Context, eventID int64, ts string) error
	WithIncidentLock(ctx context.Context, incidentID int64, fn func(ctx context.Context) error) error
}

// Bot is the Slack app.
type Bot struct {
	api       *slack.Client
	incidents IncidentService
	store     Store
	log       *slog.Logger
	sem       chan struct{} // one slot per envelope being handled
	pacer     *pacer        // paces posts per channel
	now       func() time.Time
	sched     scheduling     // schedules, swaps and overrides (schedules.go)
	alerts    AlertPublisher // nil: no /oncall page

	integrations        []string          // names, for /oncall maintenance
	integrationChannels map[string]string // integration -> channel
	maintenance         MaintenanceStore  // nil: no /oncall maintenance
}

// New returns a Bot. Both tokens are required: without them there is no
// Slack, and the caller decides to run without it.
func New(cfg Config, incidents IncidentService, store Store) (*Bot, error) {
	switch {
	case cfg.BotToken == "":
		return nil, errors.New("slack: no bot token (xoxb-...)")
	case cfg.AppToken == "":
		return nil, errors.New("slack: no app-level token (xapp-...) for Socket Mode")
	case strings.HasPrefix(cfg.BotToken, "xapp-") || strings.HasPrefix(cfg.AppToken, "xoxb-"):
		return nil, errors.New("slack: the tokens are swapped: SLACK_BOT_TOKEN is the xoxb-... one, SLACK_APP_TOKEN the xapp-... one")
	case incidents == nil || store == nil:
		return nil, errors.New("slack: the incident service and the store are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Other prefixes are not refused (proxies and test servers mint their
	// own tokens), but they are worth a word: Slack's tokens have these.
	if !strings.HasPrefix(cfg.BotToken, "xoxb-") || !strings.HasPrefix(cfg.AppToken, "xapp-") {
		log.Warn("Slack tokens do not look like a bot token (xoxb-...) and an app-level token (xapp-...); Slack will refuse them unless SLACK_API_URL points elsewhere")
	}
	log = log.With("component", "slack")
	opts := append(webAPIOptions(cfg.APIURL, log), slack.OptionAppLevelToken(cfg.AppToken))
	b := &Bot{
		api:       slack.New(cfg.BotToken, opts...),
		incidents: incidents,
		store:     store,
		log:       log,
		sem:       make(chan struct{}, maxHandlers),
		pacer:     newPacer(postRate, postBurst, maxPacedChannels),
		now:       time.Now,
		alerts:    cfg.Alerts,

		integrations:        slices.Clone(cfg.Integrations),
		integrationChannels: maps.Clone(cfg.IntegrationChannels),
		maintenance:         cfg.Maintenance,
	}
	b.sched = newScheduling(cfg, b.api, func() time.Time { return b.now() }, log)
	return b, nil
}

// Run checks the bot token, connects to Slack over Socket Mode and handles
// what arrives until ctx is done; then it waits for the envelopes in hand
// and returns nil. It returns an error when Slack refuses a token; while
// Slack cannot be reached it keeps trying (slack-go reconnects by itself).
func (b *Bot) Run(ctx context.Context) error {
	if err := b.checkToken(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	client := socketmode.New(b.api, socketmode.OptionLog(debugLog{b.log}))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- client.RunContext(runCtx) }()

	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-client.Events:
			b.dispatch(ctx, client, evt, &handlers)
		}
	}
}

// checkToken asks Slack who the bot is, until Slack answers: an answer
// with an error (a refused token) is final, a network error is not.
func (b *Bot) checkToken(ctx context.Context) error {
	delay := time.Second
	for {
		auth, err := b.api.AuthTestContext(ctx)
		if err == nil {
			b.log.Info("Slack bot token accepted", "team", auth.Team, "bot_user", auth.UserID)
			return nil
		}
		if _, refused := errors.AsType[slack.SlackErrorResponse](err); refused {
			return fmt.Errorf("check the Slack bot token: %w", err)
		}
		b.log.Warn("cannot reach Slack; retrying", "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// dispatch acks an envelope at once and hands its work to a goroutine.
func (b *Bot) dispatch(ctx context.Context, client *socketmode.Client, evt socketmode.Event, handlers *sync.WaitGroup) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.log.Debug("connecting to Slack")
	case socketmode.EventTypeConnected:
		b.log.Info("connected to Slack (Socket Mode)")
	case socketmode.EventTypeConnectionError:
		b.log.Warn("cannot connect to Slack; retrying", "err", eventError(evt.Data))
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("Slack refused the app-level token")
	case socketmode.EventTypeHello:
		b.log.Debug("Slack said hello")
	case socketmode.EventTypeDisconnect:
		b.log.Info("Slack asked to reconnect")
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if ok && cb.Type == slack.InteractionTypeViewSubmission {
			// The answer to a modal's submission rides on the ack: it is
			// made in a handler, within Slack's 3 seconds.
			req := evt.Request
			b.spawn(ctx, handlers, func(ctx context.Context) {
				reply, work := b.handleViewSubmission(ctx, cb)
				b.ack(ctx, client, req, reply)
				if work != nil {
					work(ctx)
				}
			})
			return
		}
		b.ack(ctx, client, evt.Request, nil)
		if ok {
			b.spawn(ctx, handlers, func(ctx context.Context) { b.handleInteraction(ctx, cb) })
		}
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			b.ack(ctx, client, evt.Request, nil)
			return
		}
		reply, work := b.slashCommand(cmd)
		b.ack(ctx, client, evt.Request, reply)
		if work != nil {
			b.spawn(ctx, handlers, work)
		}
	case socketmode.EventTypeEventsAPI:
		b.ack(ctx, client, evt.Request, nil) // no events are subscribed to yet
	case socketmode.EventTypeErrorBadMessage:
		// Ack what can be acked, or Slack sends it again and again.
		if bad, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var req socketmode.Request
			if json.Unmarshal(bad.Message, &req) == nil && req.EnvelopeID != "" {
				b.ack(ctx, client, &req, nil)
			}
			b.log.Warn("unreadable Socket Mode message", "err", bad.Cause)
		}
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("Socket Mode error", "type", evt.Type, "err", eventError(evt.Data))
	}
}

func (b *Bot) ack(ctx context.Context, client *socketmode.Client, req *socketmode.Request, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	if req.RetryAttempt > 0 {
		b.log.Info("Slack redelivered an envelope", "envelope", req.EnvelopeID, "attempt", req.RetryAttempt, "reason", req.RetryReason)
	}
	if err := client.AckCtx(ctx, req.EnvelopeID, payload); err != nil {
		b.log.Warn("ack Socket Mode envelope", "envelope", req.EnvelopeID, "err", err)
	}
}

// spawn runs fn in a goroutine once a handler slot is free. fn's context
// outlives ctx by up to handlerTimeout so that shutdown finishes the work
// in hand.
func (b *Bot) spawn(ctx context.Context, handlers *sync.WaitGroup, fn func(context.Context)) {
	handlers.Go(func() {
		b.sem <- struct{}{}
		defer func() { <-b.sem }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handlerTimeout)
		defer cancel()
		fn(ctx)
	})
}

func eventError(data any) error {
	switch d := data.(type) {
	case *slack.ConnectionErrorEvent:
		return d.ErrorObj
	case *slack.IncomingEventError:
		return d.ErrorObj
	case *socketmode.ErrorWriteFailed:
		return d.Cause
	case error:
		return d
	}
	return nil
}

// debugLog passes slack-go's own logging (on only with its debug option)
// to slog at debug level.
type debugLog struct{ log *slog.Logger }

func (l debugLog) Output(_ int, s string) error {
	l.log.Debug(strings.TrimSpace(s))
	return nil
}

// webAPIOptions points a Slack Web API client at apiURL (Slack's own when
// empty; slack-go wants it to end with a slash) and logs through log.
func webAPIOptions(apiURL string, log *slog.Logger) []slack.Option {
	opts := []slack.Option{slack.OptionLog(debugLog{log})}
	if apiURL != "" {
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return opts
}
