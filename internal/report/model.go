// Package report holds reach's report model (schema "reach/v1"), builds it
// from scan results and runtime observations, and renders it as text, JSON,
// SARIF and OpenVEX.
package report

import "time"

// Schema is the value of Report.Schema.
const Schema = "reach/v1"

// Status is how close to execution a vulnerability or a symbol came.
type Status string

const (
	// Reached: executed while observed.
	Reached Status = "reached"
	// Linked: present in the binary (entry or inlined copy), not seen to run.
	Linked Status = "linked"
	// Imported: the module version is affected but none of its vulnerable
	// symbols is in the binary.
	Imported Status = "imported"
)

// Rank orders statuses: reached > linked > imported > "".
func (s Status) Rank() int {
	switch s {
	case Reached:
		return 3
	case Linked:
		return 2
	case Imported:
		return 1
	}
	return 0
}

// Report is the whole result of one reach command.
type Report struct {
	Schema   string    `json:"schema"`
	Tool     Tool      `json:"tool"`
	DB       DB        `json:"db"`
	Mode     string    `json:"mode"` // "scan", "run" or "attach"
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Binaries []*Binary `json:"binaries"`
	Notes    []string  `json:"notes,omitempty"` // warnings a reader must see, such as a stale cache
}

// Tool identifies reach.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// DB identifies the vulnerability database the report used.
type DB struct {
	Source   string    `json:"source"`
	Modified time.Time `json:"modified"`
}

// Binary is one analysed or observed Go binary.
type Binary struct {
	Path       string `json:"path"`
	BuildID    string `json:"build_id,omitempty"`
	GoVersion  string `json:"go_version"`
	MainModule string `json:"main_module"`
	// MainVersion is the main module's version as the build recorded it,
	// such as "v1.2.3" or "(devel)"; "" when unknown.
	MainVersion string     `json:"main_version,omitempty"`
	Stripped    bool       `json:"stripped"`
	PIE         bool       `json:"pie"`
	PIDs        []int      `json:"pids,omitempty"`
	Modules     []Module   `json:"modules"`
	Findings    []*Finding `json:"findings"`
}

// Module is one module of the binary, with the version actually built
// (the replacement's, for a replaced module).
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Replace string `json:"replace,omitempty"` // "path@version" of the replacement, if any
}

// Finding is one OSV entry that affects a binary.
type Finding struct {
	OSV          string    `json:"osv"`
	Aliases      []string  `json:"aliases,omitempty"`
	Summary      string    `json:"summary,omitempty"`
	Module       string    `json:"module"`
	Version      string    `json:"version"`
	FixedVersion string    `json:"fixed_version,omitempty"`
	Status       Status    `json:"status"`
	Symbols      []*Symbol `json:"symbols,omitempty"`
}

// Symbol is one vulnerable symbol of a finding that is in the binary.
type Symbol struct {
	Package   string      `json:"package"`
	Name      string      `json:"name"` // exactly as the OSV entry spells it; "" for a whole package
	Status    Status      `json:"status"`
	Hits      uint64      `json:"hits,omitempty"`
	FirstSeen *time.Time  `json:"first_seen,omitempty"`
	LastSeen  *time.Time  `json:"last_seen,omitempty"`
	Callsites []*Callsite `json:"callsites,omitempty"`
	Stack     []Frame     `json:"stack,omitempty"` // of the first hit
}

// Callsite is an application frame from which a symbol was called.
type Callsite struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Hits     uint64 `json:"hits"`
}

// Frame is one symbolized stack frame.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}
