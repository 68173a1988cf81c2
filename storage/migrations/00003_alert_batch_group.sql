-- +goose Up

-- The group and status of each batch. The queue does not keep the order of
-- a group's batches (several workers, retries), so a firing batch can be
-- processed after a later resolved one; RecordBatch looks for such a
-- resolved batch before it opens an incident that nothing would resolve.
-- NULL in batches recorded before this migration.
ALTER TABLE alert_batches
    ADD COLUMN group_key text,
    ADD COLUMN status    text CHECK (status IN ('firing', 'resolved'));

CREATE INDEX alert_batches_group_resolved ON alert_batches (integration_id, group_key, received_at)
    WHERE status = 'resolved';

-- +goose Down
DROP INDEX alert_batches_group_resolved;
ALTER TABLE alert_batches
    DROP COLUMN status,
    DROP COLUMN group_key;
