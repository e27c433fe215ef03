-- The overview's ranking, kept at write time: one row per service and
-- OSV entry with what the overview reads of its findings (rankVulns),
-- so that the unfiltered overview reads as many rows as there are
-- (service, OSV) pairs, not findings. Ingest updates the rows of the
-- pairs a batch changed, in the batch's transaction (summary.go).
CREATE TABLE service_vulns (
  service       TEXT NOT NULL,
  osv           TEXT NOT NULL,
  status_rank   BIGINT NOT NULL DEFAULT 0, -- the highest of its findings
  first_reached BIGINT,                    -- the earliest
  last_seen     BIGINT NOT NULL DEFAULT 0, -- the latest
  n_reached     BIGINT NOT NULL DEFAULT 0, -- its findings by status
  n_not_watched BIGINT NOT NULL DEFAULT 0,
  n_linked      BIGINT NOT NULL DEFAULT 0,
  n_imported    BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (service, osv)
);
CREATE INDEX service_vulns_osv ON service_vulns (osv);
-- The same statement as Store.RebuildSummary's.
INSERT INTO service_vulns (service, osv, status_rank, first_reached, last_seen, n_reached, n_not_watched, n_linked, n_imported)
SELECT f.service, f.osv, MAX(f.status_rank), MIN(f.first_reached), MAX(f.last_seen),
  SUM(CASE WHEN f.status_rank = 4 THEN 1 ELSE 0 END),
  SUM(CASE WHEN f.status_rank = 3 THEN 1 ELSE 0 END),
  SUM(CASE WHEN f.status_rank = 2 THEN 1 ELSE 0 END),
  SUM(CASE WHEN f.status_rank = 1 THEN 1 ELSE 0 END)
FROM findings f GROUP BY f.service, f.osv
