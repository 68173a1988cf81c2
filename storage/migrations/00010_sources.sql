-- +goose Up

-- What processing each batch did, for Opsgenie's request status: created,
-- joined, resolved, acknowledged, unacknowledged, noted, heartbeat, stale,
-- no_incident. NULL in batches recorded before this migration.
ALTER TABLE alert_batches ADD COLUMN outcome text;

-- The last heartbeat of each integration.
CREATE TABLE integration_heartbeats (
    integration_id  bigint      PRIMARY KEY REFERENCES integrations (id),
    last_seen       timestamptz NOT NULL
);

-- Maintenance windows started from Slack (/oncall maintenance): alerts of
-- the integration are stored and shown until then, and nobody is paged.
-- Windows from the config are not stored: ingest marks their batches.
CREATE TABLE integration_maintenance (
    integration  text        PRIMARY KEY,
    until        timestamptz NOT NULL,
    started_by   text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now()
);

-- A silenced incident pages nobody until silenced_until; 9999-12-31 (Go's
-- oncall.UntilResolved) until it is resolved.
ALTER TABLE incidents ADD COLUMN silenced_until timestamptz;

ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('created', 'alert', 'acknowledged', 'unacknowledged', 'resolved', 'reopened',
                    'escalated', 'paged', 'page_delivered', 'page_failed', 'escalation_step',
                    'note', 'silenced', 'unsilenced'));

-- +goose Down
DELETE FROM incident_events WHERE kind IN ('note', 'silenced', 'unsilenced');
ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('created', 'alert', 'acknowledged', 'unacknowledged', 'resolved', 'reopened',
                    'escalated', 'paged', 'page_delivered', 'page_failed', 'escalation_step'));
ALTER TABLE incidents DROP COLUMN silenced_until;
DROP TABLE integration_maintenance;
DROP TABLE integration_heartbeats;
ALTER TABLE alert_batches DROP COLUMN outcome;
