-- +goose Up

-- The paging timeline: each page, its outcome and each step the chain takes
-- by itself are events of the incident, posted in its Slack thread like the
-- others. target is who was paged, channel how.
ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('created', 'alert', 'acknowledged', 'unacknowledged', 'resolved', 'reopened',
                    'escalated', 'paged', 'page_delivered', 'page_failed', 'escalation_step'));
ALTER TABLE incident_events ADD COLUMN target  text NOT NULL DEFAULT '';
ALTER TABLE incident_events ADD COLUMN channel text NOT NULL DEFAULT '';

-- A delivery being sent holds a lease: a worker that finds it 'sending'
-- with the lease running leaves it to the worker holding it; one that finds
-- the lease expired knows a worker died between the provider call and
-- recording it, and reconciles with the provider before sending again.
-- sending_at is when the current attempt started (reconciliation looks for
-- pages made since then).
ALTER TABLE deliveries ADD COLUMN sending_at   timestamptz;
ALTER TABLE deliveries ADD COLUMN lease_until  timestamptz;
ALTER TABLE deliveries ADD COLUMN queued_at    timestamptz;
-- What the provider said after accepting it (delivered, no answer, ...).
ALTER TABLE deliveries ADD COLUMN detail       text NOT NULL DEFAULT '';
-- Deliveries whose queue message may be lost (queued or sending long ago)
-- are published again; few rows are in these states at any time.
CREATE INDEX deliveries_in_flight ON deliveries (queued_at) WHERE status IN ('queued', 'sending');

-- Reconciliation checks that a page it found is not another delivery's.
CREATE INDEX deliveries_provider ON deliveries (provider_id) WHERE provider_id <> '';

-- The engine looks for triggered incidents whose chain is stopped (a lost
-- restart); few incidents are triggered at any time.
CREATE INDEX incidents_triggered ON incidents (id) WHERE status = 'triggered';

-- +goose Down
DROP INDEX incidents_triggered;
DROP INDEX deliveries_provider;
DROP INDEX deliveries_in_flight;
ALTER TABLE deliveries DROP COLUMN detail;
ALTER TABLE deliveries DROP COLUMN queued_at;
ALTER TABLE deliveries DROP COLUMN lease_until;
ALTER TABLE deliveries DROP COLUMN sending_at;
ALTER TABLE incident_events DROP COLUMN channel;
ALTER TABLE incident_events DROP COLUMN target;
DELETE FROM incident_events WHERE kind IN ('paged', 'page_delivered', 'page_failed', 'escalation_step');
ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('created', 'alert', 'acknowledged', 'unacknowledged', 'resolved', 'reopened', 'escalated'));
