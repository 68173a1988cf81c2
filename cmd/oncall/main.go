// Command oncall is the on-call bot: one binary that ingests alerts, stores
// incidents, pages people and talks to Slack. This package only wires the
// parts together; see DESIGN.md for the contracts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // schedules name IANA zones; images may have no zoneinfo
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `oncall: a Slack-native on-call bot

Usage:
  oncall serve   [--config FILE] [--listen ADDR] [--data-dir DIR]
  oncall migrate
  oncall config check FILE
  oncall who [--schedule NAME] [--at RFC3339]
  oncall schedule shifts (--schedule NAME | --ics FILE) --from T --to T [--tz ZONE] [--json]
  oncall version
  oncall dev     [--config FILE] [--listen ADDR]   (throwaway Postgres + embedded NATS, for trying it out)

Environment: DATABASE_URL, NATS_URL, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_API_URL,
ONCALL_CONFIG, ONCALL_LISTEN, ONCALL_DATA_DIR, ONCALL_LOG_LEVEL (debug|info|warn|error),
ONCALL_NATS_REPLICAS (stream replicas on an external NATS cluster; default 1),
ONCALL_PUBLIC_URL (this server's URL, for the calendar feed links shown in Slack).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// env looks up an environment variable; tests pass their own.
type env func(string) (string, bool)

func (e env) get(name, fallback string) string {
	if v, ok := e(name); ok && v != "" {
		return v
	}
	return fallback
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup env) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	log := newLogger(stderr, lookup.get("ONCALL_LOG_LEVEL", "info"))
	slog.SetDefault(log) // libraries that log through the default (goose) log as JSON too
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr, lookup, log)
	case "dev":
		err = runDev(ctx, args[1:], stderr, lookup, log)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdout, stderr, lookup)
	case "config":
		return runConfig(args[1:], stdout, stderr, lookup)
	case "who":
		err = runWho(ctx, args[1:], stdout, stderr, lookup, log)
	case "schedule":
		if len(args) < 2 || args[1] != "shifts" {
			fmt.Fprintln(stderr, "usage: oncall schedule shifts (--schedule NAME | --ics FILE) --from T --to T [--tz ZONE] [--json]")
			return 2
		}
		err = runScheduleShifts(ctx, args[2:], stdout, stderr, lookup, log)
	case "version", "--version":
		fmt.Fprintln(stdout, "oncall", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "oncall: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(stderr, "oncall %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "oncall %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line itself (exit status 2).
type usageError struct{ error }

// parseFlags parses args with fs and allows no arguments after the flags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
