package storage

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
)

// SyncIntegrations makes the integrations table match the config: each
// integration is upserted by name and enabled; integrations no longer listed
// are disabled (kept, since their incidents refer to them).
func (db *DB) SyncIntegrations(ctx context.Context, in []oncall.Integration) error {
	// A stable order takes row locks in the same order in every replica.
	sorted := slices.SortedFunc(slices.Values(in), func(a, b oncall.Integration) int { return cmp.Compare(a.Name, b.Name) })
	names := make([]string, 0, len(sorted))
	for i, it := range sorted {
		if i > 0 && sorted[i-1].Name == it.Name {
			return fmt.Errorf("sync integrations: duplicate name %q", it.Name)
		}
		var c textCheck
		c.text("name", it.Name)
		c.text("kind", it.Kind)
		c.text("channel", it.Channel)
		c.text("escalation", it.Escalation)
		if c.err != nil {
			return fmt.Errorf("sync integrations: integration %q: %w", it.Name, c.err)
		}
		names = append(names, it.Name)
	}

	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		for _, it := range sorted {
			hash := sha256.Sum256([]byte(it.Token))
			_, err := tx.Exec(ctx, `
				INSERT INTO integrations (name, kind, token_hash, channel, escalation, enabled)
				VALUES ($1, $2, $3, $4, $5, true)
				ON CONFLICT (name) DO UPDATE
				SET kind = EXCLUDED.kind, token_hash = EXCLUDED.token_hash, channel = EXCLUDED.channel,
				    escalation = EXCLUDED.escalation, enabled = true, updated_at = now()
				WHERE (integrations.kind, integrations.token_hash, integrations.channel,
				       integrations.escalation, integrations.enabled)
				      IS DISTINCT FROM
				      (EXCLUDED.kind, EXCLUDED.token_hash, EXCLUDED.channel, EXCLUDED.escalation, true)`,
				it.Name, it.Kind, hash[:], it.Channel, it.Escalation)
			if err != nil {
				return fmt.Errorf("upsert integration %q: %w", it.Name, err)
			}
		}
		_, err := tx.Exec(ctx, `
			UPDATE integrations SET enabled = false, updated_at = now()
			WHERE enabled AND NOT (name = ANY ($1))`, names)
		if err != nil {
			return fmt.Errorf("disable unlisted integrations: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sync integrations: %w", err)
	}
	return nil
}
