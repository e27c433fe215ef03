// FromMatch turns match results into the report model: one Binary per
// matched binary, with its modules and findings, and an index from each
// matched symbol to the report symbol a runtime engine records its hits
// into (a SymbolRef, for Recorder.Record).

package report

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
)

// ErrBadResult reports a match result that cannot be turned into a report,
// such as one without its binary or OSV entry: a bug in the caller.
var ErrBadResult = errors.New("incomplete match result")

// Built is the report part built from match results.
type Built struct {
	// Binaries has one entry per result, in the results' order.
	Binaries []*Binary
	// Refs maps each matched symbol to where its hits go in Binaries:
	// pass the value to Recorder.Record.
	Refs map[*match.Symbol]SymbolRef
	// Notes says, per binary, which of its modules come from its source
	// file paths rather than its build information, and which packages
	// have no module version at all: add them to the report's notes.
	Notes []string
}

// FromMatch builds report binaries from match results. Linked findings
// start with every symbol linked; a Recorder moves them to reached.
func FromMatch(results []*match.Result) (*Built, error) {
	out := &Built{
		Binaries: make([]*Binary, 0, len(results)),
		Refs:     map[*match.Symbol]SymbolRef{},
	}
	for i, res := range results {
		if res == nil || res.Binary == nil {
			return nil, fmt.Errorf("match result %d: no binary: %w", i, ErrBadResult)
		}
		b := newBinary(res.Binary)
		out.Notes = append(out.Notes, moduleNotes(res.Binary)...)
		for _, mf := range res.Findings {
			if mf == nil || mf.Entry == nil {
				return nil, fmt.Errorf("match result for %s: finding without OSV entry: %w", res.Binary.Path, ErrBadResult)
			}
			f, err := newFinding(mf)
			if err != nil {
				return nil, fmt.Errorf("match result for %s: %w", res.Binary.Path, err)
			}
			b.Findings = append(b.Findings, f)
			for j, ms := range mf.Symbols {
				out.Refs[ms] = SymbolRef{Binary: b, Finding: f, Symbol: f.Symbols[j]}
			}
		}
		slices.SortStableFunc(b.Findings, func(x, y *Finding) int { return strings.Compare(x.OSV, y.OSV) })
		out.Binaries = append(out.Binaries, b)
	}
	return out, nil
}

func newBinary(bi *binfo.Binary) *Binary {
	b := &Binary{
		Path:         bi.Path,
		BuildID:      bi.BuildID,
		GoVersion:    bi.GoVersion,
		MainModule:   bi.Main.Path,
		MainVersion:  bi.Main.Version,
		MainInferred: bi.Main.Inferred,
		TestOf:       testOf(bi),
		Stripped:     bi.Stripped,
		PIE:          bi.PIE,
		Modules:      make([]Module, 0, len(bi.Deps)),
		Findings:     []*Finding{},
	}
	for _, d := range bi.Deps {
		m := Module{Path: d.Path, Version: d.Version, Inferred: d.Inferred}
		if r := d.Replace; r != nil {
			m.Version = r.Version
			m.Replace = r.Path
			if r.Version != "" {
				m.Replace += "@" + r.Version
			}
		}
		b.Modules = append(b.Modules, m)
	}
	slices.SortFunc(b.Modules, func(x, y Module) int { return strings.Compare(x.Path, y.Path) })
	return b
}

// maxNotedPackages bounds the packages a note names.
const maxNotedPackages = 5

// moduleNotes says which modules of bi were inferred from its source file
// paths, and which packages have no version to check.
func moduleNotes(bi *binfo.Binary) []string {
	name := bi.Path
	if pkg := testOf(bi); pkg != "" {
		name = (&Binary{Path: bi.Path, TestOf: pkg}).Name()
	}
	var notes []string
	var inferred []string
	for _, d := range bi.Deps {
		if d.Inferred {
			inferred = append(inferred, d.Path+"@"+d.Version)
		}
	}
	if len(inferred) > 0 {
		notes = append(notes, fmt.Sprintf("%s: its build information lists no dependencies (as in test binaries); the versions of %s were inferred from the paths of its source files (module@version directories): %s",
			name, count(len(inferred), "module"), strings.Join(inferred, ", ")))
	}
	if n := len(bi.Unversioned); n > 0 {
		pkgs := strings.Join(bi.Unversioned[:min(n, maxNotedPackages)], ", ")
		if n > maxNotedPackages {
			pkgs += fmt.Sprintf(" and %d more", n-maxNotedPackages)
		}
		notes = append(notes, fmt.Sprintf("%s: the vulnerabilities of %s were not checked: neither its build information nor their source file paths give their module versions (a vendored build without -trimpath, or modules replaced by local directories): %s; rebuild with -trimpath, or scan a binary built with go build, to check them",
			name, count(n, "package"), pkgs))
	}
	return notes
}

func newFinding(mf *match.Finding) (*Finding, error) {
	e := mf.Entry
	var status Status
	switch mf.Status {
	case match.Linked:
		status = Linked
	case match.Imported:
		status = Imported
	default:
		return nil, fmt.Errorf("%s: status %q, want linked or imported: %w", e.ID, mf.Status, ErrBadResult)
	}
	if status == Linked && len(mf.Symbols) == 0 {
		return nil, fmt.Errorf("%s: linked without symbols: %w", e.ID, ErrBadResult)
	}
	f := &Finding{
		OSV:          e.ID,
		Aliases:      slices.Clone(e.Aliases),
		Summary:      entrySummary(e.Summary, e.Details),
		Module:       mf.Module,
		Version:      mf.Version,
		FixedVersion: mf.FixedVersion,
		Status:       status,
		WholeModule:  mf.WholeModule,
	}
	for _, ms := range mf.Symbols {
		if ms == nil {
			return nil, fmt.Errorf("%s: nil symbol: %w", e.ID, ErrBadResult)
		}
		f.Symbols = append(f.Symbols, &Symbol{Package: ms.Package, Name: ms.Name, Scope: ms.Scope, Status: Linked})
	}
	return f, nil
}

// entrySummary is the entry's summary, or the first sentence of its details
// when it has none (older entries).
func entrySummary(sum, details string) string {
	if s := strings.TrimSpace(sum); s != "" {
		return s
	}
	d := strings.Join(strings.Fields(details), " ")
	if i := strings.Index(d, ". "); i >= 0 {
		d = d[:i+1]
	}
	return d
}

// count is "1 module" or "2 modules".
func count(n int, noun string) string {
	return fmt.Sprintf("%d %s", n, plural(n, noun, noun+"s"))
}

// testOf returns the package that bi tests when it is a test binary, and
// "" for other binaries. The go command names a test binary's main package
// "PKG.test" in its build information; before Go 1.24 a test binary has
// no main package there, and its file, as go test builds it, is named
// after the last element of PKG ("yaml.v2.test"): PKG is then the package
// of that name, or its external test package PKG_test, whose test
// functions (Test, Benchmark, Example, Fuzz) the binary holds.
func testOf(bi *binfo.Binary) string {
	if pkg, ok := strings.CutSuffix(bi.MainPackage, ".test"); ok && pkg != "" {
		return pkg
	}
	if bi.MainPackage != "" {
		return ""
	}
	base, ok := strings.CutSuffix(path.Base(filepath.ToSlash(bi.Path)), ".test")
	if !ok || base == "" {
		return ""
	}
	for _, f := range bi.Funcs {
		pkg, sym := binfo.SplitFuncName(f.Name)
		pkg = strings.TrimSuffix(pkg, "_test")
		if path.Base(pkg) != base || !isTestFunc(sym) {
			continue
		}
		return pkg
	}
	return ""
}

// isTestFunc reports whether sym names a function go test runs: TestXxx,
// BenchmarkXxx, ExampleXxx or FuzzXxx (Xxx not starting with a lower-case
// letter).
func isTestFunc(sym string) bool {
	for _, prefix := range []string{"Test", "Benchmark", "Example", "Fuzz"} {
		rest, ok := strings.CutPrefix(sym, prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return true
		}
		r, _ := utf8.DecodeRuneInString(rest)
		return !unicode.IsLower(r) && !strings.ContainsAny(rest, ".[")
	}
	return false
}
