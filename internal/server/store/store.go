// Package store keeps reach server's data: agents and their tokens,
// findings deduplicated across the fleet, triage, and the remote
// configuration, in SQLite (one file, the default) or PostgreSQL, with
// one set of migrations for both.
//
// Every method is safe for concurrent use, and for use by several
// servers on one PostgreSQL database: no state that another server needs
// is kept in memory.
package store

import (
	"errors"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// Errors the HTTP layer maps to status codes.
var (
	ErrNotFound     = errors.New("not found")         // 404
	ErrUnauthorized = errors.New("invalid token")     // 401
	ErrForbidden    = errors.New("forbidden")         // 403: another agent's ID
	ErrInvalid      = errors.New("invalid request")   // 400, wrapped with what is wrong
	ErrConflict     = errors.New("conflict")          // 409: changed meanwhile (SetConfigFrom)
	ErrUnavailable  = errors.New("store unavailable") // 503: the database is down
)

// Options configure Open.
type Options struct {
	// Sinks are the names of the delivery sinks configured ("otlp",
	// "webhook"): Ingest queues each newly reached finding for each.
	Sinks []string
}

// Agent is an enrolled agent as the server knows it.
type Agent struct {
	ID             string            `json:"id"`
	Hostname       string            `json:"hostname"`
	ReachVersion   string            `json:"reach_version"`
	Labels         map[string]string `json:"labels"`
	Created        time.Time         `json:"created"`
	LastSeen       time.Time         `json:"last_seen"`
	LastSeq        uint64            `json:"last_seq"`
	Processes      int               `json:"processes"`
	Probes         int               `json:"probes"`
	AppliedVersion int64             `json:"applied_version"`
	AppliedError   string            `json:"applied_error"`
	AppliedAt      *time.Time        `json:"applied_at"`
	Revoked        bool              `json:"revoked"`
}

// IngestResult is what storing a batch did.
type IngestResult struct {
	Duplicate bool    // the batch was stored before: nothing written
	Updates   int     // finding rows inserted or updated
	Reached   []int64 // findings that became reached with this batch
}

// Triage states, as in OpenVEX and Dependency-Track.
const (
	StateNone               = ""
	StateUnderInvestigation = "under_investigation"
	StateAffected           = "affected"
	StateNotAffected        = "not_affected"
	StateFixed              = "fixed"
)

// Justifications of not_affected, OpenVEX's.
var Justifications = []string{
	"component_not_present",
	"vulnerable_code_not_present",
	"vulnerable_code_not_in_execute_path",
	"vulnerable_code_cannot_be_controlled_by_adversary",
	"inline_mitigations_already_exist",
}

// Triage is a decision about a finding.
type Triage struct {
	State         string     `json:"state"`
	Justification string     `json:"justification,omitempty"` // for not_affected
	Note          string     `json:"note,omitempty"`
	By            string     `json:"by,omitempty"` // "reach" for the automatic affected of a reached finding
	At            *time.Time `json:"at,omitempty"`
	Expires       *time.Time `json:"expires,omitempty"`
}

// TriageRequest sets a state on one finding (FindingID), on an OSV across
// every service (OSV), on a whole service (Service), or on an OSV in one
// service (both). Bulk requests also apply to findings stored later.
type TriageRequest struct {
	FindingID int64
	Service   string
	OSV       string
	Triage
}

// Finding is one stored finding with where it was seen.
type Finding struct {
	ID             int64            `json:"id"`
	Service        string           `json:"service"`
	BuildID        string           `json:"build_id"`
	BinaryPath     string           `json:"binary_path"`
	OSV            string           `json:"osv"`
	Summary        string           `json:"summary"`
	Aliases        []string         `json:"aliases"`
	Module         string           `json:"module"`
	Version        string           `json:"version"`
	FixedVersion   string           `json:"fixed_version"`
	Package        string           `json:"package"`
	Symbol         string           `json:"symbol"`
	Scope          string           `json:"scope"`
	Status         report.Status    `json:"status"`
	Callsite       *report.Callsite `json:"callsite"` // nil for none; Hits is the finding's
	Stack          []report.Frame   `json:"stack"`
	Hits           uint64           `json:"hits"`
	HitsLowerBound bool             `json:"hits_lower_bound"`
	FirstSeen      time.Time        `json:"first_seen"`
	LastSeen       time.Time        `json:"last_seen"`
	FirstReached   *time.Time       `json:"first_reached"`
	Triage         Triage           `json:"triage"`
	Hosts          []string         `json:"hosts"` // where seen
	Environments   []string         `json:"environments"`
}

// Filter narrows queries; zero fields do not filter.
type Filter struct {
	Service     string
	Environment string
	Status      report.Status // only findings with this status
	OSV         string
	Triage      string // triage state; "none" for not set
	Query       string // substring of OSV, alias, module, package, symbol, service or summary
	Limit       int    // 0: the query's default
	Offset      int
}

// Overview is the fleet overview.
type Overview struct {
	Services int `json:"services"`
	Hosts    int `json:"hosts"`
	Agents   int `json:"agents"`
	// Findings counts findings by status, Vulns OSV entries by their
	// highest status in the fleet.
	Findings map[report.Status]int `json:"findings"`
	Vulns    map[report.Status]int `json:"vulns"`
	Ranked   []VulnRank            `json:"ranked"`
	// Timeline counts findings by the day they were first reached,
	// oldest first, over the last 90 days.
	Timeline []DayCount `json:"timeline"`
}

// VulnRank is one OSV entry in the fleet overview, ranked by how many
// services reached it, then how many link it.
type VulnRank struct {
	OSV             string        `json:"osv"`
	Summary         string        `json:"summary"`
	Aliases         []string      `json:"aliases"`
	Status          report.Status `json:"status"` // highest in the fleet
	ReachedServices int           `json:"reached_services"`
	LinkedServices  int           `json:"linked_services"` // linked or not_watched, not reached
	FirstReached    *time.Time    `json:"first_reached"`
	LastSeen        time.Time     `json:"last_seen"`
}

// DayCount is a count on one day (UTC).
type DayCount struct {
	Day   time.Time `json:"day"`
	Count int       `json:"count"`
}

// Vuln is one OSV entry across the fleet.
type Vuln struct {
	OSV      string    `json:"osv"`
	Summary  string    `json:"summary"`
	Aliases  []string  `json:"aliases"`
	Findings []Finding `json:"findings"`
}

// Service is one service with its binaries and findings.
type Service struct {
	Name     string                `json:"name"`
	Binaries []Binary              `json:"binaries"`
	Counts   map[report.Status]int `json:"counts"`
	Findings []Finding             `json:"findings"`
}

// ServiceSummary is a row of the services list.
type ServiceSummary struct {
	Name         string                `json:"name"`
	Environments []string              `json:"environments"`
	Binaries     int                   `json:"binaries"`
	Counts       map[report.Status]int `json:"counts"`
	LastSeen     time.Time             `json:"last_seen"`
}

// Binary is one build of a service.
type Binary struct {
	BuildID     string          `json:"build_id"`
	Path        string          `json:"path"`
	GoVersion   string          `json:"go_version"`
	MainModule  string          `json:"main_module"`
	MainVersion string          `json:"main_version"`
	Stripped    bool            `json:"stripped"`
	PIE         bool            `json:"pie"`
	Modules     []report.Module `json:"modules"`
	FirstSeen   time.Time       `json:"first_seen"`
	LastSeen    time.Time       `json:"last_seen"`
}

// ConfigAgent is an agent's answer to the configuration.
type ConfigAgent struct {
	AgentID  string     `json:"agent_id"`
	Hostname string     `json:"hostname"`
	Version  int64      `json:"version"`
	Error    string     `json:"error"`
	At       *time.Time `json:"at"`
}
