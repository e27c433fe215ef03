-- reach server schema: what the write path needs beyond version 1.

-- reached_batch is "AGENT/SEQ" of the batch that made the finding reached
-- (set with first_reached), so that Ingest tells a finding it made
-- reached from one another batch did, race-free on PostgreSQL.
ALTER TABLE findings ADD COLUMN reached_batch TEXT NOT NULL DEFAULT '';
-- triage_rule is the triage_rules row the finding's state comes from;
-- NULL for a state set on the finding itself (or by reach).
ALTER TABLE findings ADD COLUMN triage_rule BIGINT;

-- A delivery is claimed by one server until claimed_until, so that two
-- servers do not deliver the same row at the same moment; claim names
-- the claimer.
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
ALTER TABLE outbox ADD COLUMN claim TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_sink_pending ON outbox (sink, delivered, id);
