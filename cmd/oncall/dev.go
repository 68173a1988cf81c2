package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/oncallbot/oncall/internal/pgtest"
)

// devChannel is the channel the dev config posts to when ONCALL_DEV_CHANNEL
// is unset; with real Slack tokens, set it to a channel the bot is in.
const devChannel = "C0DEVCHANNEL"

// runDev implements `oncall dev`: serve against a throwaway PostgreSQL
// cluster (removed on exit) and the embedded NATS, with the dev config.
// Slack is on when SLACK_BOT_TOKEN and SLACK_APP_TOKEN are set.
func runDev(ctx context.Context, args []string, stderr io.Writer, lookup env, log *slog.Logger) error {
	devLookup := env(func(name string) (string, bool) {
		if name == "ONCALL_DEV_CHANNEL" {
			return lookup.get(name, devChannel), true
		}
		return lookup(name)
	})
	args = append([]string{"--config", "examples/dev.yaml"}, args...)
	o, err := parseServeFlags("dev", args, stderr, devLookup)
	if err != nil {
		return err
	}
	if o.DataDir == "data" { // the serve default: keep dev runs out of the working tree
		dir, err := os.MkdirTemp("", "oncall-dev-nats-")
		if err != nil {
			return fmt.Errorf("create NATS directory: %w", err)
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
	}

	log.Info("starting a throwaway PostgreSQL cluster")
	cluster, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			log.Warn("stop PostgreSQL", "err", err)
		}
	}()
	o.DatabaseURL, err = cluster.CreateDatabase(ctx, "oncall")
	if err != nil {
		return err
	}
	log.Info("PostgreSQL is up", "url", o.DatabaseURL)
	return serve(ctx, o, log)
}
