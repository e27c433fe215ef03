-- reach server schema, version 1. One text for SQLite and PostgreSQL:
-- {{id}} is the dialect's auto-increment primary key. Times are BIGINT
-- Unix nanoseconds (UTC); JSON is TEXT.

CREATE TABLE agents (
  id              TEXT PRIMARY KEY,
  token_hash      TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the agent token
  hostname        TEXT NOT NULL DEFAULT '',
  reach_version   TEXT NOT NULL DEFAULT '',
  labels          TEXT NOT NULL DEFAULT '{}', -- JSON object
  enrol_token_id  BIGINT,
  created         BIGINT NOT NULL,
  last_seen       BIGINT NOT NULL,
  last_seq        BIGINT NOT NULL DEFAULT 0,
  processes       BIGINT NOT NULL DEFAULT 0,
  probes          BIGINT NOT NULL DEFAULT 0,
  applied_version BIGINT NOT NULL DEFAULT 0,
  applied_error   TEXT NOT NULL DEFAULT '',
  applied_at      BIGINT,
  revoked         BIGINT
);

CREATE TABLE enrol_tokens (
  id         {{id}},
  name       TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created    BIGINT NOT NULL,
  expires    BIGINT,
  revoked    BIGINT,
  uses       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE admin_tokens (
  id         {{id}},
  name       TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created    BIGINT NOT NULL,
  revoked    BIGINT
);

-- Server-wide secrets shared by every server on one database (the key
-- that signs dashboard sessions).
CREATE TABLE secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Batches stored, for idempotency.
CREATE TABLE batches (
  agent_id TEXT NOT NULL,
  seq      BIGINT NOT NULL,
  received BIGINT NOT NULL,
  updates  BIGINT NOT NULL,
  PRIMARY KEY (agent_id, seq)
);

CREATE TABLE binaries (
  id           {{id}},
  service      TEXT NOT NULL,
  build_id     TEXT NOT NULL,
  path         TEXT NOT NULL,
  go_version   TEXT NOT NULL DEFAULT '',
  main_module  TEXT NOT NULL DEFAULT '',
  main_version TEXT NOT NULL DEFAULT '',
  stripped     BIGINT NOT NULL DEFAULT 0,
  pie          BIGINT NOT NULL DEFAULT 0,
  modules      TEXT NOT NULL DEFAULT '[]', -- JSON []report.Module
  first_seen   BIGINT NOT NULL,
  last_seen    BIGINT NOT NULL,
  UNIQUE (service, build_id)
);

CREATE TABLE vulns (
  osv     TEXT PRIMARY KEY,
  summary TEXT NOT NULL DEFAULT '',
  aliases TEXT NOT NULL DEFAULT '[]' -- JSON []string
);

-- One finding per service x binary x OSV x symbol x callsite. A symbol
-- not reached has one row with an empty callsite; a reached one a row per
-- callsite (and the empty-callsite row when a first hit had none).
CREATE TABLE findings (
  id                {{id}},
  service           TEXT NOT NULL,
  build_id          TEXT NOT NULL,
  osv               TEXT NOT NULL,
  package           TEXT NOT NULL,             -- the module path for a whole module
  symbol            TEXT NOT NULL,             -- '' for a whole package or module
  callsite_function TEXT NOT NULL DEFAULT '',
  callsite_file     TEXT NOT NULL DEFAULT '',
  callsite_line     BIGINT NOT NULL DEFAULT 0,
  module            TEXT NOT NULL,
  version           TEXT NOT NULL,
  fixed_version     TEXT NOT NULL DEFAULT '',
  scope             TEXT NOT NULL DEFAULT '',  -- '', 'package', 'module'
  status            TEXT NOT NULL,             -- reached, not_watched, linked, imported
  status_rank       BIGINT NOT NULL,           -- report.Status.Rank(); a row never goes down
  hits              BIGINT NOT NULL DEFAULT 0, -- sum over sightings
  hits_lower_bound  BIGINT NOT NULL DEFAULT 0,
  stack             TEXT NOT NULL DEFAULT '[]', -- JSON []report.Frame of the first hit
  first_seen        BIGINT NOT NULL,
  last_seen         BIGINT NOT NULL,
  first_reached     BIGINT,
  -- Triage: state '' (not set), under_investigation, affected,
  -- not_affected (with an OpenVEX justification), fixed.
  triage_state         TEXT NOT NULL DEFAULT '',
  triage_justification TEXT NOT NULL DEFAULT '',
  triage_note          TEXT NOT NULL DEFAULT '',
  triage_by            TEXT NOT NULL DEFAULT '',
  triage_at            BIGINT,
  triage_expires       BIGINT,
  UNIQUE (service, build_id, osv, package, symbol, callsite_function, callsite_file, callsite_line)
);
CREATE INDEX findings_osv ON findings (osv);
CREATE INDEX findings_status ON findings (status_rank, service);
CREATE INDEX findings_first_reached ON findings (first_reached);

-- Where a finding was seen: per counting instance (fleet.Observation).
CREATE TABLE sightings (
  finding_id  BIGINT NOT NULL,
  instance    TEXT NOT NULL,
  agent_id    TEXT NOT NULL,
  host        TEXT NOT NULL,
  environment TEXT NOT NULL DEFAULT '',
  labels      TEXT NOT NULL DEFAULT '{}',
  pids        TEXT NOT NULL DEFAULT '[]',
  hits        BIGINT NOT NULL DEFAULT 0, -- the instance's largest total
  first_seen  BIGINT NOT NULL,
  last_seen   BIGINT NOT NULL,
  PRIMARY KEY (finding_id, instance)
);
CREATE INDEX sightings_env ON sightings (environment, finding_id);
CREATE INDEX sightings_agent ON sightings (agent_id);

-- Bulk triage: a state for an OSV across services (service ''), a whole
-- service (osv ''), or an OSV in one service. It applies to the findings
-- it matches now and to those that arrive later, unless a finding has a
-- state of its own.
CREATE TABLE triage_rules (
  id            {{id}},
  service       TEXT NOT NULL DEFAULT '',
  osv           TEXT NOT NULL DEFAULT '',
  state         TEXT NOT NULL,
  justification TEXT NOT NULL DEFAULT '',
  note          TEXT NOT NULL DEFAULT '',
  by_user       TEXT NOT NULL,
  at            BIGINT NOT NULL,
  expires       BIGINT,
  UNIQUE (service, osv)
);

-- Every triage decision, for the record.
CREATE TABLE triage_log (
  id            {{id}},
  finding_id    BIGINT,
  service       TEXT NOT NULL DEFAULT '',
  osv           TEXT NOT NULL DEFAULT '',
  state         TEXT NOT NULL,
  justification TEXT NOT NULL DEFAULT '',
  note          TEXT NOT NULL DEFAULT '',
  by_user       TEXT NOT NULL,
  at            BIGINT NOT NULL,
  expires       BIGINT
);

-- Remote configuration, one row per version; the current one is the
-- largest version.
CREATE TABLE configs (
  version    BIGINT PRIMARY KEY,
  body       TEXT NOT NULL, -- JSON fleet.Config
  created    BIGINT NOT NULL,
  created_by TEXT NOT NULL DEFAULT ''
);

-- Newly reached findings to deliver to OTLP and webhooks, at least once.
CREATE TABLE outbox (
  id         {{id}},
  sink       TEXT NOT NULL,    -- 'otlp', 'webhook'
  finding_id BIGINT NOT NULL,
  created    BIGINT NOT NULL,
  delivered  BIGINT,
  attempts   BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox (delivered, id);
