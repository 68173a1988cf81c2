-- +goose Up

-- Announcements of the on-call schedules (handoffs, reminders, gap
-- warnings), one row per announcement made or being made. A replica claims
-- the row before it sends, so each is sent at most once whatever the
-- number of replicas. person is "" where an announcement is nobody's.
CREATE TABLE announcements (
    schedule   text        NOT NULL,
    kind       text        NOT NULL,
    at         timestamptz NOT NULL,
    person     text        NOT NULL DEFAULT '',
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, kind, at, person)
);

CREATE INDEX announcements_at ON announcements (at);

-- +goose Down
DROP TABLE announcements;
