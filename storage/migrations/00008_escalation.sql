-- +goose Up

-- The escalation chain of each incident that has one: where it is and when
-- it next needs the engine. An engine claims due rows with
-- FOR UPDATE SKIP LOCKED, re-reads the incident and moves the row on in the
-- same transaction, so a step fires once whatever the number of replicas.
--   state running:   step is the next step to take, at next_run_at.
--   state stopped:   acknowledged or resolved; next_run_at, if set, is when
--                    an acknowledgement times out.
--   state exhausted: every pass ran; next_run_at, if set, is when the
--                    incident resolves itself.
-- repeat only grows: each pass and each restart gets a new one, so the keys
-- of deliveries stay unique; base_repeat is the repeat the current run
-- started with (the chain's repeat limit counts from it).
CREATE TABLE incident_escalations (
    incident_id  bigint      PRIMARY KEY REFERENCES incidents (id),
    chain        text        NOT NULL,
    state        text        NOT NULL DEFAULT 'running'
                             CHECK (state IN ('running', 'stopped', 'exhausted')),
    step         integer     NOT NULL DEFAULT 0 CHECK (step >= 0),
    repeat       integer     NOT NULL DEFAULT 0 CHECK (repeat >= 0),
    base_repeat  integer     NOT NULL DEFAULT 0 CHECK (base_repeat >= 0 AND base_repeat <= repeat),
    -- A manual escalation: the next run skips waits to the next notify step.
    escalate     boolean     NOT NULL DEFAULT false,
    next_run_at  timestamptz,
    started_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX incident_escalations_due ON incident_escalations (next_run_at)
    WHERE next_run_at IS NOT NULL;

-- Every page: one person (or one mention) by one channel. The unique key
-- (incident:step:repeat:person:channel) makes creating it idempotent; a
-- worker moves it pending -> queued -> sending -> sent/delivered/failed,
-- each move conditional on the status before, so nothing is sent twice.
CREATE TABLE deliveries (
    id           bigserial   PRIMARY KEY,
    key          text        NOT NULL UNIQUE,
    incident_id  bigint      NOT NULL REFERENCES incidents (id),
    step         integer     NOT NULL,
    repeat       integer     NOT NULL,
    person       text        NOT NULL,
    channel      text        NOT NULL CHECK (channel IN ('slack', 'sms', 'call')),
    due_at       timestamptz NOT NULL,
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'delivered',
                                               'failed', 'cancelled')),
    attempts     integer     NOT NULL DEFAULT 0,
    error        text        NOT NULL DEFAULT '',
    provider_id  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);

CREATE INDEX deliveries_due ON deliveries (status, due_at);
CREATE INDEX deliveries_incident ON deliveries (incident_id, id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE incident_escalations;
