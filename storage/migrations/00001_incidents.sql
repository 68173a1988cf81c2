-- +goose Up

-- Inbound alert sources, synced from the config at start.
CREATE TABLE integrations (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    kind        text        NOT NULL,
    token_hash  bytea       NOT NULL,           -- sha256 of the token
    channel     text        NOT NULL DEFAULT '',
    escalation  text        NOT NULL DEFAULT '',
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    id              bigserial   PRIMARY KEY,
    integration_id  bigint      NOT NULL REFERENCES integrations (id),
    group_key       text        NOT NULL,
    status          text        NOT NULL DEFAULT 'triggered'
                                CHECK (status IN ('triggered', 'acknowledged', 'resolved')),
    title           text        NOT NULL,
    message         text        NOT NULL DEFAULT '',
    severity        text        NOT NULL DEFAULT '',
    link            text        NOT NULL DEFAULT '',
    image_url       text        NOT NULL DEFAULT '',
    labels          jsonb       NOT NULL DEFAULT '{}',
    alert_count     integer     NOT NULL DEFAULT 0,
    channel         text        NOT NULL DEFAULT '',
    escalation      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acked_at        timestamptz,
    acked_by        text,
    resolved_at     timestamptz,
    resolved_by     text,
    -- A resolved incident keeps who acknowledged it, if anyone did.
    CONSTRAINT incidents_acked_consistent
        CHECK (CASE status WHEN 'triggered' THEN acked_at IS NULL
                           WHEN 'acknowledged' THEN acked_at IS NOT NULL
                           ELSE true END),
    CONSTRAINT incidents_resolved_consistent
        CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);

-- One open incident per group; also how a batch finds the incident it joins.
CREATE UNIQUE INDEX incidents_open_group ON incidents (integration_id, group_key)
    WHERE status <> 'resolved';

-- Every accepted request, by its id: makes processing a batch idempotent.
CREATE TABLE alert_batches (
    id              text        PRIMARY KEY,
    integration_id  bigint      NOT NULL REFERENCES integrations (id),
    incident_id     bigint      REFERENCES incidents (id),  -- NULL: resolved batch with no open incident
    received_at     timestamptz NOT NULL,
    raw             bytea,
    processed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alert_batches_incident ON alert_batches (incident_id);

-- Every alert received, repeats included.
CREATE TABLE alerts (
    id           bigserial   PRIMARY KEY,
    incident_id  bigint      NOT NULL REFERENCES incidents (id),
    batch_id     text        NOT NULL REFERENCES alert_batches (id),
    fingerprint  text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    title        text        NOT NULL DEFAULT '',
    message      text        NOT NULL DEFAULT '',
    severity     text        NOT NULL DEFAULT '',
    link         text        NOT NULL DEFAULT '',
    image_url    text        NOT NULL DEFAULT '',
    labels       jsonb       NOT NULL DEFAULT '{}',
    annotations  jsonb       NOT NULL DEFAULT '{}',
    starts_at    timestamptz,
    ends_at      timestamptz,
    received_at  timestamptz NOT NULL
);

CREATE INDEX alerts_incident ON alerts (incident_id, id);
CREATE INDEX alerts_batch ON alerts (batch_id);

-- The latest status of each distinct alert of an incident: the Firing and
-- Resolved counts.
CREATE TABLE incident_alerts (
    incident_id  bigint      NOT NULL REFERENCES incidents (id),
    fingerprint  text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, fingerprint)
);

-- The timeline of an incident.
CREATE TABLE incident_events (
    id           bigserial   PRIMARY KEY,
    incident_id  bigint      NOT NULL REFERENCES incidents (id),
    kind         text        NOT NULL CHECK (kind IN ('created', 'alert', 'acknowledged', 'unacknowledged',
                                                     'resolved', 'reopened', 'escalated')),
    actor        text        NOT NULL,
    note         text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    dedup_key    text        UNIQUE,           -- idempotency key of the request that caused it
    slack_ts     text                          -- ts of its Slack thread reply; NULL until posted
);

CREATE INDEX incident_events_incident ON incident_events (incident_id, id);
CREATE INDEX incident_events_unposted ON incident_events (incident_id, id) WHERE slack_ts IS NULL;

-- The Slack message that shows an incident.
CREATE TABLE slack_messages (
    incident_id  bigint      PRIMARY KEY REFERENCES incidents (id),
    channel      text        NOT NULL,
    ts           text        NOT NULL,
    hash         text        NOT NULL DEFAULT '',  -- of the rendered message, to skip needless updates
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE slack_messages;
DROP TABLE incident_events;
DROP TABLE incident_alerts;
DROP TABLE alerts;
DROP TABLE alert_batches;
DROP TABLE incidents;
DROP TABLE integrations;
