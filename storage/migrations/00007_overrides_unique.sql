-- +goose Up

-- The same override twice (a double click on Accept reaching two replicas)
-- is one override.
CREATE UNIQUE INDEX schedule_overrides_same
    ON schedule_overrides (schedule, person, starts_at, ends_at)
    WHERE cancelled_at IS NULL;

-- +goose Down
DROP INDEX schedule_overrides_same;
