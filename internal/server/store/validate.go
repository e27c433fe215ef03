package store

import (
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
)

// Limits on what one batch may hold. A batch within fleet.MaxBatchBytes
// fits them unless it is made to hurt: they bound the work one request
// costs the server.
const (
	MaxString       = 4096    // bytes of any one string
	MaxFrames       = 64      // frames of a stack
	MaxObservations = 1000    // observations in a batch
	MaxRows         = 20000   // finding updates (symbol x callsite) in a batch
	MaxList         = 10000   // modules of a binary, callsites of a symbol, PIDs, labels...
	MaxHits         = 1 << 53 // a hit count (also the largest integer a JSON reader keeps exactly)
)

// The times a batch may carry: anything outside cannot be stored as Unix
// nanoseconds, or is nonsense.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validateBatch checks all of b before anything is written, so that a
// rejected batch stores nothing. It fills in defaults (an observation's
// service is its binary's base name when not given) and returns the
// number of finding rows the batch updates. Errors wrap ErrInvalid and say
// where: "observation 2 (HOST/INSTANCE): finding GO-2024-1234: symbol
// pkg.F: callsite 3: line -1 is negative".
func validateBatch(agentID string, b *fleet.Batch) (rows int, err error) {
	if b == nil {
		return 0, fmt.Errorf("%w: no batch", ErrInvalid)
	}
	if b.AgentID != agentID {
		return 0, fmt.Errorf("%w: batch of agent %s sent with the token of agent %s", ErrForbidden, quote(b.AgentID), agentID)
	}
	if b.Seq < 1 {
		return 0, fmt.Errorf("%w: seq must be 1 or more", ErrInvalid)
	}
	if b.Seq > 1<<62 {
		return 0, fmt.Errorf("%w: seq %d is too large", ErrInvalid, b.Seq)
	}
	if err := validateAgentState(&b.Agent); err != nil {
		return 0, fmt.Errorf("%w: agent: %v", ErrInvalid, err)
	}
	if a := b.Applied; a != nil {
		if a.Version < 0 {
			return 0, fmt.Errorf("%w: applied: version %d is negative", ErrInvalid, a.Version)
		}
		if err := checkString("error", a.Error); err != nil {
			return 0, fmt.Errorf("%w: applied: %v", ErrInvalid, err)
		}
		if !a.At.IsZero() {
			if err := checkTime("at", a.At); err != nil {
				return 0, fmt.Errorf("%w: applied: %v", ErrInvalid, err)
			}
		}
	}
	if len(b.Observations) > MaxObservations {
		return 0, fmt.Errorf("%w: %d observations, at most %d in a batch", ErrInvalid, len(b.Observations), MaxObservations)
	}
	for i := range b.Observations {
		o := &b.Observations[i]
		n, err := validateObservation(o)
		if err != nil {
			return 0, fmt.Errorf("%w: observation %d (%s): %v", ErrInvalid, i, quote(o.Instance), err)
		}
		rows += n
		if rows > MaxRows {
			return 0, fmt.Errorf("%w: more than %d finding updates in a batch: split it", ErrInvalid, MaxRows)
		}
	}
	return rows, nil
}

func validateAgentState(a *fleet.AgentState) error {
	if err := checkStrings("hostname", a.Hostname, "reach_version", a.ReachVersion); err != nil {
		return err
	}
	if a.Processes < 0 || a.Probes < 0 {
		return fmt.Errorf("negative processes or probes")
	}
	return checkLabels(a.Labels)
}

func validateObservation(o *fleet.Observation) (rows int, err error) {
	switch {
	case o.Instance == "":
		return 0, fmt.Errorf("instance is required")
	case o.Host == "":
		return 0, fmt.Errorf("host is required")
	case o.Binary == nil:
		return 0, fmt.Errorf("binary is required")
	case o.Binary.Path == "":
		return 0, fmt.Errorf("binary: path is required")
	}
	if o.Service == "" {
		o.Service = path.Base(o.Binary.Path)
	}
	if err := checkStrings("instance", o.Instance, "host", o.Host, "service", o.Service,
		"environment", o.Environment, "mode", o.Mode); err != nil {
		return 0, err
	}
	if err := checkLabels(o.Labels); err != nil {
		return 0, err
	}
	if len(o.PIDs) > MaxList {
		return 0, fmt.Errorf("%d pids, at most %d", len(o.PIDs), MaxList)
	}
	bin := o.Binary
	if err := checkStrings("binary: path", bin.Path, "binary: build_id", bin.BuildID,
		"binary: go_version", bin.GoVersion, "binary: main_module", bin.MainModule,
		"binary: main_version", bin.MainVersion, "binary: test_of", bin.TestOf); err != nil {
		return 0, err
	}
	if len(bin.Modules) > MaxList {
		return 0, fmt.Errorf("binary: %d modules, at most %d", len(bin.Modules), MaxList)
	}
	for i, m := range bin.Modules {
		if err := checkStrings("path", m.Path, "version", m.Version, "replace", m.Replace); err != nil {
			return 0, fmt.Errorf("binary: module %d: %v", i, err)
		}
	}
	if len(bin.Findings) > MaxRows {
		return 0, fmt.Errorf("binary: %d findings, at most %d", len(bin.Findings), MaxRows)
	}
	for i, f := range bin.Findings {
		n, err := validateFinding(f)
		if err != nil {
			if f != nil && f.OSV != "" {
				return 0, fmt.Errorf("finding %s: %v", quote(f.OSV), err)
			}
			return 0, fmt.Errorf("finding %d: %v", i, err)
		}
		rows += n
		if rows > MaxRows {
			return 0, fmt.Errorf("more than %d finding updates: split the batch", MaxRows)
		}
	}
	return rows, nil
}

func validateFinding(f *report.Finding) (rows int, err error) {
	if f == nil {
		return 0, fmt.Errorf("null finding")
	}
	if f.OSV == "" || f.Module == "" {
		return 0, fmt.Errorf("osv and module are required")
	}
	if err := checkStrings("osv", f.OSV, "summary", f.Summary, "module", f.Module,
		"version", f.Version, "fixed_version", f.FixedVersion); err != nil {
		return 0, err
	}
	if _, err := report.ParseStatus(string(f.Status)); err != nil {
		return 0, err
	}
	if len(f.Aliases) > 64 {
		return 0, fmt.Errorf("%d aliases, at most 64", len(f.Aliases))
	}
	for _, a := range f.Aliases {
		if err := checkString("alias", a); err != nil {
			return 0, err
		}
	}
	if len(f.Symbols) == 0 {
		return 1, nil
	}
	if len(f.Symbols) > MaxList {
		return 0, fmt.Errorf("%d symbols, at most %d", len(f.Symbols), MaxList)
	}
	for _, sym := range f.Symbols {
		n, err := validateSymbol(sym)
		if err != nil {
			if sym != nil {
				return 0, fmt.Errorf("symbol %s: %v", quote(sym.Package+"."+sym.Name), err)
			}
			return 0, err
		}
		rows += n
	}
	return rows, nil
}

func validateSymbol(sym *report.Symbol) (rows int, err error) {
	if sym == nil {
		return 0, fmt.Errorf("null symbol")
	}
	if sym.Package == "" {
		return 0, fmt.Errorf("package is required")
	}
	if err := checkStrings("package", sym.Package, "name", sym.Name, "scope", string(sym.Scope)); err != nil {
		return 0, err
	}
	if _, err := report.ParseStatus(string(sym.Status)); err != nil {
		return 0, err
	}
	if sym.Hits > MaxHits {
		return 0, fmt.Errorf("hits %d: more than %d", sym.Hits, uint64(MaxHits))
	}
	for _, t := range []*time.Time{sym.FirstSeen, sym.LastSeen} {
		if t != nil {
			if err := checkTime("first_seen or last_seen", *t); err != nil {
				return 0, err
			}
		}
	}
	if len(sym.Stack) > MaxFrames {
		return 0, fmt.Errorf("stack of %d frames, at most %d", len(sym.Stack), MaxFrames)
	}
	for i, fr := range sym.Stack {
		if err := checkFrame(fr.Function, fr.File, fr.Line); err != nil {
			return 0, fmt.Errorf("stack frame %d: %v", i, err)
		}
	}
	if len(sym.Callsites) > MaxList {
		return 0, fmt.Errorf("%d callsites, at most %d", len(sym.Callsites), MaxList)
	}
	if sym.Status != report.Reached || len(sym.Callsites) == 0 {
		// Only a reached symbol has a row per callsite; the callsites of
		// another (there should be none) are not stored.
		return 1, nil
	}
	for i, c := range sym.Callsites {
		if c == nil {
			return 0, fmt.Errorf("callsite %d: null", i)
		}
		if err := checkFrame(c.Function, c.File, c.Line); err != nil {
			return 0, fmt.Errorf("callsite %d: %v", i, err)
		}
		if c.Hits > MaxHits {
			return 0, fmt.Errorf("callsite %d: hits %d: more than %d", i, c.Hits, uint64(MaxHits))
		}
	}
	return len(sym.Callsites), nil
}

func checkFrame(function, file string, line int) error {
	if line < 0 {
		return fmt.Errorf("line %d is negative", line)
	}
	if line > 1<<31 {
		return fmt.Errorf("line %d is too large", line)
	}
	return checkStrings("function", function, "file", file)
}

func checkLabels(labels map[string]string) error {
	if len(labels) > 64 {
		return fmt.Errorf("%d labels, at most 64", len(labels))
	}
	for k, v := range labels {
		if k == "" {
			return fmt.Errorf("label with an empty name")
		}
		if err := checkStrings("label name", k, "label "+quote(k), v); err != nil {
			return err
		}
	}
	return nil
}

// checkStrings checks name, value pairs with checkString.
func checkStrings(nameValues ...string) error {
	for i := 0; i+1 < len(nameValues); i += 2 {
		if err := checkString(nameValues[i], nameValues[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// checkString refuses a string longer than MaxString, not UTF-8, or with
// a NUL byte (which PostgreSQL's TEXT cannot hold).
func checkString(name, s string) error {
	switch {
	case len(s) > MaxString:
		return fmt.Errorf("%s: %d bytes, at most %d", name, len(s), MaxString)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s: not UTF-8", name)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s: NUL byte", name)
	}
	return nil
}

func checkTime(name string, t time.Time) error {
	if t.Before(minTime) || !t.Before(maxTime) {
		return fmt.Errorf("%s: time %s out of range", name, t.UTC().Format(time.RFC3339))
	}
	return nil
}

// quote quotes untrusted s for a message: escaped, and its first 64 bytes
// only.
func quote(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}

// validUTF8 is s with invalid UTF-8 and NUL bytes replaced, for storing a
// message that did not come from a request (an error).
func validUTF8(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
