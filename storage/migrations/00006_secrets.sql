-- +goose Up

-- Secrets the replicas share, made once by the first one that needs them
-- (e.g. the key that makes calendar export URLs unguessable).
CREATE TABLE app_secrets (
    name       text        PRIMARY KEY,
    value      bytea       NOT NULL CHECK (length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE app_secrets;
