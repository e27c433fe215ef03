// Package osv defines the subset of the Open Source Vulnerability (OSV)
// schema that the Go vulnerability database uses, with the Go-specific
// "ecosystem_specific" block that names vulnerable packages and symbols.
//
// See https://ossf.github.io/osv-schema and https://go.dev/security/vuln/database.
package osv

import "time"

// Ecosystem is the OSV ecosystem of Go modules.
const Ecosystem = "Go"

// Special module paths the Go vulnerability database uses for the Go
// distribution itself.
const (
	// ModuleStdlib is the standard library; its versions are Go versions
	// written as semantic versions (go1.21.0 is 1.21.0).
	ModuleStdlib = "stdlib"
	// ModuleToolchain is the go command and the rest of the toolchain.
	ModuleToolchain = "toolchain"
)

// Entry is one OSV entry of the Go vulnerability database.
type Entry struct {
	SchemaVersion    string            `json:"schema_version,omitempty"`
	ID               string            `json:"id"`
	Modified         time.Time         `json:"modified"`
	Published        time.Time         `json:"published,omitempty"`
	Withdrawn        *time.Time        `json:"withdrawn,omitempty"`
	Aliases          []string          `json:"aliases,omitempty"`
	Summary          string            `json:"summary,omitempty"`
	Details          string            `json:"details,omitempty"`
	Affected         []Affected        `json:"affected"`
	References       []Reference       `json:"references,omitempty"`
	Credits          []Credit          `json:"credits,omitempty"`
	DatabaseSpecific *DatabaseSpecific `json:"database_specific,omitempty"`
}

// Affected names one affected module, its affected version ranges and,
// where known, the vulnerable packages and symbols within it.
type Affected struct {
	Module            Module             `json:"package"`
	Ranges            []Range            `json:"ranges,omitempty"`
	EcosystemSpecific *EcosystemSpecific `json:"ecosystem_specific,omitempty"`
}

// Module is an OSV "package": for Go, a module path.
type Module struct {
	Path      string `json:"name"`
	Ecosystem string `json:"ecosystem"`
}

// RangeType is the kind of versions a Range holds. The Go database uses only
// RangeTypeSemver.
type RangeType string

// RangeTypeSemver is a range of semantic versions, without the leading "v".
const RangeTypeSemver RangeType = "SEMVER"

// Range is a list of events that open and close ranges of affected versions.
type Range struct {
	Type   RangeType    `json:"type"`
	Events []RangeEvent `json:"events"`
}

// RangeEvent opens (Introduced) or closes (Fixed) an affected range. Exactly
// one of its fields is set. Versions have no leading "v"; "0" introduces at
// the first version.
type RangeEvent struct {
	Introduced string `json:"introduced,omitempty"`
	Fixed      string `json:"fixed,omitempty"`
}

// EcosystemSpecific is the Go database's list of vulnerable packages.
type EcosystemSpecific struct {
	Packages []Package `json:"imports,omitempty"`
}

// Package is one vulnerable package of a module. An empty Symbols list means
// the whole package is vulnerable. GOOS and GOARCH, when set, restrict the
// vulnerability to those platforms.
type Package struct {
	Path    string   `json:"path"`
	GOOS    []string `json:"goos,omitempty"`
	GOARCH  []string `json:"goarch,omitempty"`
	Symbols []string `json:"symbols,omitempty"`
}

// Reference is a link to more information.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Credit names who found or fixed the vulnerability.
type Credit struct {
	Name string `json:"name"`
}

// DatabaseSpecific holds the Go database's own fields.
type DatabaseSpecific struct {
	URL          string `json:"url,omitempty"`
	ReviewStatus string `json:"review_status,omitempty"`
}
