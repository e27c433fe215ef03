// Package fleet is the protocol between the reach processes that observe
// programs (reach run and attach with -server, and the agent) and reach
// server: enrolment, report batches and remote configuration. Every body
// is JSON; every request carries "Authorization: Bearer TOKEN". See
// docs/server.md.
package fleet

import (
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// The protocol's paths, relative to the server's base URL.
const (
	// PathEnrol: POST EnrolRequest, authorized by an enrolment token;
	// answers EnrolResponse with the agent's own ID and token.
	PathEnrol = "/api/v1/agent/enrol"
	// PathReport: POST Batch, authorized by the agent's token; answers
	// BatchResponse.
	PathReport = "/api/v1/agent/report"
	// PathConfig: GET ?version=N&wait=SECONDS, authorized by the agent's
	// token. Answers 200 with a Config as soon as the server's version
	// differs from N (at once when it already does), or 304 Not Modified
	// once wait (at most MaxWait) has passed without a change.
	PathConfig = "/api/v1/agent/config"
)

// MaxWait is the longest a configuration request waits for a change.
const MaxWait = 60 * time.Second

// MaxBatchBytes is the largest Batch body the server accepts; a sender
// splits its observations over several batches to stay below it.
const MaxBatchBytes = 8 << 20

// EnrolRequest asks for an agent identity.
type EnrolRequest struct {
	Hostname     string            `json:"hostname"`
	ReachVersion string            `json:"reach_version"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// EnrolResponse is a new agent's identity. The server keeps only a hash
// of Token: it cannot be shown again.
type EnrolResponse struct {
	AgentID string `json:"agent_id"`
	Token   string `json:"token"`
}

// Batch is one report from an agent.
//
// Batches are idempotent: Seq numbers an agent's batches from 1, and a
// batch whose (AgentID, Seq) the server already stored is acknowledged
// (BatchResponse.Duplicate) and not stored again, so an agent retries a
// batch it got no answer for with the same Seq. Hits are idempotent too:
// each Observation's hits are the totals so far of its Instance, not
// increments, so a stored count never doubles.
type Batch struct {
	AgentID string     `json:"agent_id"` // the token's agent; "" for the token's agent
	Seq     uint64     `json:"seq"`      // >= 1, increasing per agent
	Sent    time.Time  `json:"sent"`
	Agent   AgentState `json:"agent"`
	// Observations are the programs observed since the last batch, or
	// still observed, each with its findings so far.
	Observations []Observation `json:"observations,omitempty"`
	// Applied is the configuration the agent applied last, and the error
	// applying it, if any.
	Applied *Applied `json:"applied,omitempty"`
}

// AgentState is what an agent says about itself in every batch.
type AgentState struct {
	Hostname     string            `json:"hostname"`
	ReachVersion string            `json:"reach_version"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Processes is the number of processes observed now, Probes the
	// number of probe sites armed in them.
	Processes int `json:"processes"`
	Probes    int `json:"probes"`
}

// Observation is one binary observed on one host by one counting source
// (a reach run, or an agent's watch of one process).
type Observation struct {
	// Instance names the counting source; it stays the same for as long
	// as its hit counts keep growing (for example "HOST/PID/STARTTICKS",
	// or a random ID per reach run). The server keeps, per finding, the
	// largest total each instance reported, and sums them.
	Instance    string `json:"instance"`
	Host        string `json:"host"`
	Service     string `json:"service"`               // as labelled; the binary's name when not
	Environment string `json:"environment,omitempty"` // such as "prod"
	// Labels are OpenTelemetry resource attributes where they apply
	// (container.id, k8s.pod.name, k8s.namespace.name, ...).
	Labels  map[string]string `json:"labels,omitempty"`
	Mode    string            `json:"mode"` // "run", "attach" or "agent"
	PIDs    []int             `json:"pids,omitempty"`
	Started time.Time         `json:"started"`
	Ended   *time.Time        `json:"ended,omitempty"`
	// Binary is the binary with its modules and findings, exactly as in
	// the JSON report (schema reach/v1).
	Binary *report.Binary `json:"binary"`
}

// BatchResponse acknowledges a batch.
type BatchResponse struct {
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"` // already stored before
	Updates   int    `json:"updates"`             // finding rows written
	// ConfigVersion is the server's configuration version now, so that an
	// agent learns of a change even between configuration requests.
	ConfigVersion int64 `json:"config_version"`
}

// Config is the fleet's remote configuration: what agents watch.
type Config struct {
	Version   int64     `json:"version"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	// Paused removes every probe in the fleet while set.
	Paused bool   `json:"paused"`
	Rules  []Rule `json:"rules"`
}

// Rule selects targets for the processes of a service and environment.
type Rule struct {
	Service     string `json:"service,omitempty"`     // "" for every service
	Environment string `json:"environment,omitempty"` // "" for every environment
	// Targets are selectors as in a -targets file: OSV IDs and aliases,
	// symbols, packages, "*".
	Targets []string `json:"targets"`
	// Count keeps the probes after the first hit and counts every call;
	// one-shot otherwise.
	Count bool `json:"count,omitempty"`
}

// For returns what a process of service in environment watches under c:
// the union of the targets of the rules that apply, and whether any of
// them counts. Nothing is watched while c is paused.
func (c *Config) For(service, environment string) (targets []string, count bool) {
	if c == nil || c.Paused {
		return nil, false
	}
	seen := make(map[string]bool)
	for _, r := range c.Rules {
		if r.Service != "" && r.Service != service || r.Environment != "" && r.Environment != environment {
			continue
		}
		count = count || r.Count
		for _, t := range r.Targets {
			if !seen[t] {
				seen[t] = true
				targets = append(targets, t)
			}
		}
	}
	return targets, count
}

// Applied is an agent's answer to a configuration.
type Applied struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Error   string    `json:"error,omitempty"` // "" when applied fully
}
