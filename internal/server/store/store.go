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
	ID             string
	Hostname       string
	ReachVersion   string
	Labels         map[string]string
	Created        time.Time
	LastSeen       time.Time
	LastSeq        uint64
	Processes      int
	Probes         int
	AppliedVersion int64
	AppliedError   string
	AppliedAt      *time.Time
	Revoked        bool
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
	ID             int64
	Service        string
	BuildID        string
	BinaryPath     string
	OSV            string
	Summary        string
	Aliases        []string
	Module         string
	Version        string
	FixedVersion   string
	Package        string
	Symbol         string
	Scope          string
	Status         report.Status
	Callsite       *report.Callsite // nil for none; Hits is the finding's
	Stack          []report.Frame
	Hits           uint64
	HitsLowerBound bool
	FirstSeen      time.Time
	LastSeen       time.Time
	FirstReached   *time.Time
	Triage         Triage
	Hosts          []string // where seen
	Environments   []string
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
	Services, Hosts, Agents int
	// Findings counts findings by status, Vulns OSV entries by their
	// highest status in the fleet.
	Findings map[report.Status]int
	Vulns    map[report.Status]int
	Ranked   []VulnRank
	// Timeline counts findings by the day they were first reached,
	// oldest first, over the last 90 days.
	Timeline []DayCount
}

// VulnRank is one OSV entry in the fleet overview, ranked by how many
// services reached it, then how many link it.
type VulnRank struct {
	OSV             string
	Summary         string
	Aliases         []string
	Status          report.Status // highest in the fleet
	ReachedServices int
	LinkedServices  int // linked or not_watched, not reached
	FirstReached    *time.Time
	LastSeen        time.Time
}

// DayCount is a count on one day (UTC).
type DayCount struct {
	Day   time.Time
	Count int
}

// Vuln is one OSV entry across the fleet.
type Vuln struct {
	OSV      string
	Summary  string
	Aliases  []string
	Findings []Finding
}

// Service is one service with its binaries and findings.
type Service struct {
	Name     string
	Binaries []Binary
	Counts   map[report.Status]int
	Findings []Finding
}

// ServiceSummary is a row of the services list.
type ServiceSummary struct {
	Name         string
	Environments []string
	Binaries     int
	Counts       map[report.Status]int
	LastSeen     time.Time
}

// Binary is one build of a service.
type Binary struct {
	BuildID     string
	Path        string
	GoVersion   string
	MainModule  string
	MainVersion string
	Stripped    bool
	PIE         bool
	Modules     []report.Module
	FirstSeen   time.Time
	LastSeen    time.Time
}

// ConfigAgent is an agent's answer to the configuration.
type ConfigAgent struct {
	AgentID  string
	Hostname string
	Version  int64
	Error    string
	At       *time.Time
}
