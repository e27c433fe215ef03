package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"path/filepath"
	"strconv"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// Source says where a report was made, for FromReport.
type Source struct {
	// Instance names the reach process that made the report (NewInstance):
	// each observation's Instance is it and the binary's build ID, so that
	// the server adds up the hits of separate runs of one binary.
	Instance string
	Host     string
	// Service names every binary's service; "" names each by its file's
	// base name.
	Service     string
	Environment string
	// Labels are resource attributes of every observation (EnvLabels).
	Labels map[string]string
	// PIDLabels, when set, returns more labels for a binary from its
	// first process ID (ProcessLabels, for attach).
	PIDLabels func(pid int) map[string]string
}

// NewInstance returns a random instance name: 16 hex digits.
func NewInstance() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// FromReport returns one observation per binary of a run or attach report
// r. Each carries the binary exactly as the report has it.
func FromReport(r *report.Report, src Source) []Observation {
	var ended *time.Time
	if !r.Finished.IsZero() {
		t := r.Finished
		ended = &t
	}
	seen := make(map[string]int)
	obs := make([]Observation, 0, len(r.Binaries))
	for _, b := range r.Binaries {
		id := b.BuildID
		if id == "" {
			id = "path:" + b.Path
		}
		// Two copies of one build in one report count apart.
		seen[id]++
		if n := seen[id]; n > 1 {
			id += "#" + strconv.Itoa(n)
		}
		service := src.Service
		if service == "" {
			service = filepath.Base(b.Path)
		}
		labels := maps.Clone(src.Labels)
		if src.PIDLabels != nil && len(b.PIDs) > 0 {
			for k, v := range src.PIDLabels(b.PIDs[0]) {
				if labels == nil {
					labels = make(map[string]string)
				}
				if _, ok := labels[k]; !ok {
					labels[k] = v
				}
			}
		}
		obs = append(obs, Observation{
			Instance:    src.Instance + "/" + id,
			Host:        src.Host,
			Service:     service,
			Environment: src.Environment,
			Labels:      labels,
			Mode:        r.Mode,
			PIDs:        b.PIDs,
			Started:     r.Started,
			Ended:       ended,
			Binary:      b,
		})
	}
	return obs
}

// ReportBatch returns the batch that sends report r: its observations
// (FromReport), numbered seq, from agent agentID, with the agent's state
// (reach's version, and no process observed any more: the report is
// final).
func ReportBatch(r *report.Report, src Source, agentID string, seq uint64) *Batch {
	return &Batch{
		AgentID: agentID,
		Seq:     seq,
		Sent:    time.Now().UTC(),
		Agent: AgentState{
			Hostname:     src.Host,
			ReachVersion: r.Tool.Version,
			Labels:       src.Labels,
		},
		Observations: FromReport(r, src),
	}
}
