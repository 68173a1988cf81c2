package storage

import (
	"context"
	"crypto/rand"
	"fmt"
)

// Secret returns the shared secret called name, making a random 32-byte
// one the first time. Every replica gets the same value.
func (db *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh) // never fails (crypto/rand.Read crashes the program instead)
	// Two statements: a row another replica inserts while this one runs is
	// visible to the second statement, not to a subquery of the first.
	if _, err := db.pool.Exec(ctx, `INSERT INTO app_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, fresh); err != nil {
		return nil, fmt.Errorf("make secret %q: %w", name, err)
	}
	var value []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM app_secrets WHERE name = $1`, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("load secret %q: %w", name, err)
	}
	return value, nil
}
