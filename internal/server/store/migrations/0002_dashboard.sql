-- Indexes of the read path (queries.go, overview.go).

-- The overview ranks OSV entries by the services that reach them: it
-- groups findings by OSV and service over this index alone (covering),
-- without reading the table, also when filtered by status or triage.
CREATE INDEX findings_rank ON findings (osv, service, status_rank, first_reached, last_seen, triage_state);
-- Findings lists reached first, most recently seen next.
CREATE INDEX findings_recent ON findings (status_rank, last_seen);
-- Hosts counted in the overview.
CREATE INDEX sightings_host ON sightings (host);
-- Where findings were seen (the hosts and environments of a page of
-- findings, the environments of each service), without reading the table.
CREATE INDEX sightings_where ON sightings (finding_id, environment, host);
