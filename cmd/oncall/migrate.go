package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/oncallbot/oncall/storage"
)

// runMigrate implements `oncall migrate`: apply the embedded migrations to
// DATABASE_URL and exit.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, lookup env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	url := lookup.get("DATABASE_URL", "")
	if url == "" {
		return errors.New("DATABASE_URL is not set")
	}
	db, err := storage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
