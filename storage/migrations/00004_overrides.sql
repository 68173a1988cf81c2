-- +goose Up

-- Overrides made in Slack (swaps, take-overs): Person is on call for a
-- schedule from starts_at to ends_at, above every calendar and rotation.
-- Cancelling keeps the row for the record.
CREATE TABLE schedule_overrides (
    id            bigserial   PRIMARY KEY,
    schedule      text        NOT NULL,
    person        text        NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    created_by    text        NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    cancelled_at  timestamptz,
    cancelled_by  text,
    CONSTRAINT schedule_overrides_span CHECK (ends_at > starts_at),
    CONSTRAINT schedule_overrides_cancelled_consistent
        CHECK ((cancelled_at IS NULL) = (cancelled_by IS NULL))
);

-- The live overrides of a schedule, by the end of their span: queries ask
-- for the ones that end after a time (now, or the start of a window).
CREATE INDEX schedule_overrides_schedule ON schedule_overrides (schedule, ends_at)
    WHERE cancelled_at IS NULL;
CREATE INDEX schedule_overrides_person ON schedule_overrides (person, ends_at)
    WHERE cancelled_at IS NULL;

-- +goose Down
DROP TABLE schedule_overrides;
