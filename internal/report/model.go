// Package report holds reach's report model (schema "reach/v1"), builds it
// from match results (FromMatch) and runtime observations, and renders it as text, JSON,
// SARIF and OpenVEX.
package report

import (
	"time"

	"github.com/reach-sca/reach/internal/match"
)

// Schema is the value of Report.Schema.
const Schema = "reach/v1"

// Status is how close to execution a vulnerability or a symbol came.
type Status string

const (
	// Reached: executed while observed.
	Reached Status = "reached"
	// NotWatched (run and attach only): present in the binary, but reach
	// did not watch it for all the time it observed the processes running
	// it (the -targets selection left it out for some or all of that time,
	// or its probes could not be armed), and did not see it run. Whether
	// it ran is unknown: the symbol's Watched and Unwatched say when it was
	// watched and why not.
	NotWatched Status = "not_watched"
	// Linked: present in the binary (entry or inlined copy), not seen to
	// run; in run and attach reports, watched for all the time reach
	// observed the processes running it.
	Linked Status = "linked"
	// Imported: the module version is affected but none of its vulnerable
	// symbols is in the binary.
	Imported Status = "imported"
)

// Scope is what a symbol without a name covers, as match says it.
type Scope = match.Scope

// The scopes of a symbol without a name (see match.Scope).
const (
	ScopePackage = match.ScopePackage // the whole package
	ScopeModule  = match.ScopeModule  // the whole module
)

// Rank orders statuses: reached > not_watched > linked > imported > "".
// A symbol not watched may have run unseen: that is worse than one watched
// and not seen running, and not as bad as one seen running.
func (s Status) Rank() int {
	switch s {
	case Reached:
		return 4
	case NotWatched:
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
	// Targets lists, in run and attach reports, the selections of
	// vulnerable symbols that reach watched, oldest first: each was in
	// force from its From until the next one's.
	Targets  []Selection `json:"targets,omitempty"`
	Binaries []*Binary   `json:"binaries"`
	Notes    []string    `json:"notes,omitempty"` // warnings a reader must see, such as a stale cache
	// Unscanned lists the inputs reach was given and could not read as Go
	// binaries (scan): nothing is known about them.
	Unscanned []Unscanned `json:"unscanned,omitempty"`
	// Upgrades is, in the JSON report, the advice per module
	// (Report.UpgradeAdvice), written by WriteJSON; it is recomputed, not
	// read, when a report is read back.
	Upgrades []Upgrade `json:"upgrades,omitempty"`
}

// Unscanned is an input that could not be scanned, and why.
type Unscanned struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// NothingObserved reports whether r is a run or attach report that
// observed no Go program: it says nothing about vulnerabilities.
func (r *Report) NothingObserved() bool {
	return (r.Mode == "run" || r.Mode == "attach") && len(r.Binaries) == 0
}

// Selection is a set of targets reach watched from a time on.
type Selection struct {
	From time.Time `json:"from"`
	// File is the targets file the selectors were read from (-targets);
	// "" when they did not come from a file.
	File string `json:"file,omitempty"`
	// Selectors are the targets: "*" watches every vulnerable symbol;
	// none watches nothing.
	Selectors []Selector `json:"selectors"`
}

// Selector is one target: an OSV ID or alias, a symbol, a package or "*".
type Selector struct {
	Selector string `json:"selector"`
	// Line is the selector's line in the targets file; 0 when not from a
	// file.
	Line int `json:"line,omitempty"`
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
	Path string `json:"path"`
	// TestOf is, for a test binary (go test, go test -c), the import path
	// of the package it tests, read from its build information (main
	// package "PKG.test"): the name to show, as go test runs test binaries
	// from a temporary directory that is gone once it finished.
	TestOf     string `json:"test_of,omitempty"`
	BuildID    string `json:"build_id,omitempty"`
	GoVersion  string `json:"go_version"`
	MainModule string `json:"main_module"`
	// MainInferred is whether MainModule was inferred from function
	// names, the build information naming no main module (test binaries
	// of Go before 1.24): the longest import path common to the packages
	// built from files without a module version, so possibly a path below
	// the module's own.
	MainInferred bool `json:"main_module_inferred,omitempty"`
	// MainVersion is the main module's version as the build recorded it,
	// such as "v1.2.3" or "(devel)"; "" when unknown.
	MainVersion string     `json:"main_version,omitempty"`
	Stripped    bool       `json:"stripped"`
	PIE         bool       `json:"pie"`
	PIDs        []int      `json:"pids,omitempty"`
	Modules     []Module   `json:"modules"`
	Findings    []*Finding `json:"findings"`
}

// Name is how a report names b to a reader: "PKG (test)" for a test
// binary, else its path.
func (b *Binary) Name() string {
	if b.TestOf != "" {
		return b.TestOf + " (test)"
	}
	return b.Path
}

// Module is one module of the binary, with the version actually built
// (the replacement's, for a replaced module).
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Replace string `json:"replace,omitempty"` // "path@version" of the replacement, if any
	// Inferred is whether the module and its version were read from the
	// source file paths of the binary (its module cache directory,
	// path@version), not from its build information, which lists no
	// dependencies in test binaries.
	Inferred bool `json:"inferred,omitempty"`
}

// Finding is one OSV entry that affects a binary.
type Finding struct {
	OSV          string   `json:"osv"`
	Aliases      []string `json:"aliases,omitempty"`
	Summary      string   `json:"summary,omitempty"`
	Module       string   `json:"module"`
	Version      string   `json:"version"`
	FixedVersion string   `json:"fixed_version,omitempty"`
	Status       Status   `json:"status"`
	// WholeModule is set when the entry has no symbol data for Module: it
	// names the module and its versions but no package, so every package
	// and function of the module is treated as vulnerable (as govulncheck
	// does). The finding is linked when any code of the module is in the
	// binary, and reached when code of the module ran other than its
	// packages' initialization. Its one symbol has Scope ScopeModule.
	WholeModule bool      `json:"whole_module,omitempty"`
	Symbols     []*Symbol `json:"symbols,omitempty"`
}

// Symbol is one vulnerable symbol of a finding that is in the binary.
type Symbol struct {
	Package string `json:"package"`
	Name    string `json:"name"` // exactly as the OSV entry spells it; "" for a whole package or module
	// Scope is set for a symbol that stands for more than one function:
	// ScopePackage when the entry lists the package without symbols,
	// ScopeModule when it has no package data for the module (Package is
	// then the module path).
	Scope     Scope       `json:"scope,omitempty"`
	Status    Status      `json:"status"`
	Hits      uint64      `json:"hits,omitempty"`
	FirstSeen *time.Time  `json:"first_seen,omitempty"`
	LastSeen  *time.Time  `json:"last_seen,omitempty"`
	Callsites []*Callsite `json:"callsites,omitempty"`
	Stack     []Frame     `json:"stack,omitempty"` // of the first hit
	// Watched lists, in run and attach reports, the periods during which
	// the symbol's probes were armed in at least one observed process; a
	// period without Until was still going when the report was made.
	// There are at most 16: the last one then spans the rest, gaps
	// included. The status, not these periods, says whether the symbol
	// was watched all the time.
	Watched []Period `json:"watched,omitempty"`
	// Unwatched says why the symbol was not watched, in some process or
	// for some of the time: not selected by the targets, probes that
	// could not be armed, code that cannot be probed. Each reason once.
	Unwatched []string `json:"unwatched,omitempty"`
	// HitsLowerBound is whether Hits (and each callsite's hits) counts at
	// least, not exactly, the calls: some calls of the symbol may pass no
	// probe site that counts calls (see binfo.Site.Inexact).
	HitsLowerBound bool `json:"hits_lower_bound,omitempty"`
}

// Period is a span of time; Until is nil while it lasts.
type Period struct {
	From  time.Time  `json:"from"`
	Until *time.Time `json:"until,omitempty"`
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
