-- +goose Up

-- What an incident's Slack message showed when it was last posted or
-- updated, and when (the bot's clock): updates that change neither the
-- status nor the escalations are coalesced to one every few seconds.
-- An empty ts marks a message claimed for posting whose ts is not known yet.
ALTER TABLE slack_messages
    ADD COLUMN status      text        NOT NULL DEFAULT '',
    ADD COLUMN escalations integer     NOT NULL DEFAULT 0,
    ADD COLUMN shown_at    timestamptz;

-- +goose Down
ALTER TABLE slack_messages
    DROP COLUMN shown_at,
    DROP COLUMN escalations,
    DROP COLUMN status;
