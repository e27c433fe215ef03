package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// gvFinding is one finding of govulncheck's JSON stream.
type gvFinding = testprog.GovulncheckFinding

// TestAgreesWithGovulncheck checks that every symbol-level finding
// govulncheck makes on a binary, reach reports as linked, and that every
// OSV entry govulncheck reports at all, reach reports too. On stripped
// binaries, where govulncheck only reports modules, reach still names the
// symbols it names on the unstripped build.
func TestAgreesWithGovulncheck(t *testing.T) {
	db := realDB(t)
	testprog.Govulncheck(t) // skips (or fails under CI) before anything is built
	type prog struct {
		dir string
		v   testprog.Variant
	}
	progs := []prog{
		{"textyaml", testprog.Plain},
		{"textyaml", testprog.PIE},
		{"textyaml", testprog.Inlined},
		{"stdmail", testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"}},
		// Real modules whose entries have no symbol data.
		{"wholemods", testprog.Plain},
		{"wholemods", testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"}},
	}
	for _, p := range progs {
		t.Run(p.dir+"/"+p.v.Name, func(t *testing.T) {
			bin := testprog.Build(t, testprog.Dir(t, p.dir), p.v)
			gvFindings := testprog.GovulncheckBinary(t, db, bin)
			rb := scanJSON(t, db, bin).Binaries[0]
			symbols := checkAgreement(t, db, bin, rb, gvFindings)
			if symbols == 0 {
				t.Fatalf("govulncheck made no symbol-level finding on %s; the comparison proves nothing", bin)
			}
			t.Logf("%d symbol-level findings of govulncheck all linked in reach's report", symbols)

			// The stripped build of the same program.
			sv := p.v
			sv.Name += "-stripped"
			sv.Stripped = true
			sbin := testprog.Build(t, testprog.Dir(t, p.dir), sv)
			// govulncheck cannot read symbols from a stripped binary: it
			// reports modules, and for the standard library it assumes
			// every vulnerable symbol is present. Count what it names that
			// the program does not contain.
			guessed := 0
			for _, f := range testprog.GovulncheckBinary(t, db, sbin) {
				if len(f.Trace) > 0 && f.Trace[0].Function != "" && !namedIn(gvFindings, f) {
					guessed++
				}
			}
			t.Logf("stripped: govulncheck names %d symbols absent from the unstripped build", guessed)
			srb := scanJSON(t, db, sbin).Binaries[0]
			if n := checkAgreement(t, db, bin, srb, gvFindings); n != symbols {
				t.Errorf("stripped: %d of govulncheck's %d unstripped symbol findings linked", n, symbols)
			}
		})
	}
}

// TestAgreesWithGovulncheckLarge makes the comparison of
// TestAgreesWithGovulncheck on the large real program at
// REACH_TEST_LARGE_BIN, such as the Hugo build of bench/scan (which takes
// minutes to build: too long for CI, so the test runs only when asked).
func TestAgreesWithGovulncheckLarge(t *testing.T) {
	bin := os.Getenv("REACH_TEST_LARGE_BIN")
	if bin == "" {
		t.Log("REACH_TEST_LARGE_BIN unset: nothing to compare (go run ./bench/scan builds Hugo and says where)")
		return
	}
	db := realDB(t)
	gvFindings := testprog.GovulncheckBinary(t, db, bin)
	rb := scanJSON(t, db, bin).Binaries[0]
	symbols := checkAgreement(t, db, bin, rb, gvFindings)
	entries, whole := map[string]bool{}, map[string]bool{}
	for _, f := range gvFindings {
		if len(f.Trace) > 0 && f.Trace[0].Function != "" {
			entries[f.OSV] = true
			if rf := findFinding(rb, f.OSV); rf != nil && rf.WholeModule {
				whole[f.OSV] = true
			}
		}
	}
	t.Logf("%s: govulncheck names symbols for %d entries (%d symbol findings), %d of them without symbol data; all linked in reach's report", bin, len(entries), symbols, len(whole))
}

// checkAgreement reports every govulncheck finding that reach's binary report
// lacks, and returns how many symbol-level findings it checked.
//
// An entry without symbol data makes govulncheck report every function of
// the module it finds in the binary; reach reports the module as one
// symbol of scope module: each function govulncheck names must be in a
// package of that module, and the symbol linked.
//
// One difference is by design: govulncheck reports every standard-library
// entry that affects the binary's Go version, even when none of the entry's
// packages is compiled into the binary; reach reports a standard-library
// entry only when one of its packages has code in the binary. For each such
// entry the check proves that none of its packages is in bin (unstripped).
func checkAgreement(t *testing.T, db, bin string, rb *report.Binary, gvFindings []gvFinding) int {
	t.Helper()
	symbols, absent := 0, 0
	var pkgs map[string]bool
	for _, f := range gvFindings {
		rf := findFinding(rb, f.OSV)
		if rf == nil && len(f.Trace) > 0 && (f.Trace[0].Module == "stdlib" || f.Trace[0].Module == "toolchain") && f.Trace[0].Package == "" {
			if pkgs == nil {
				pkgs = binaryPackages(t, bin)
			}
			for _, p := range entryPackages(t, db, f.OSV, f.Trace[0].Module) {
				if pkgs[p] {
					t.Errorf("govulncheck reports %s; reach does not, though its package %s is in the binary", f.OSV, p)
				}
			}
			absent++
			continue
		}
		if rf == nil {
			t.Errorf("govulncheck reports %s; reach does not", f.OSV)
			continue
		}
		if len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue
		}
		tr := f.Trace[0]
		name := tr.Function
		if tr.Receiver != "" {
			name = trimPointer(tr.Receiver) + "." + tr.Function
		}
		symbols++
		if rf.WholeModule {
			// The entry may name several modules, each without symbol
			// data. (govulncheck's trace may name a parent module: it
			// gives a package the module with the longest matching path
			// among those it knows of.)
			s := moduleSymbol(rf, tr.Package)
			if s == nil || s.Status.Rank() < report.Linked.Rank() || rf.Status.Rank() < report.Linked.Rank() {
				t.Errorf("govulncheck: %s (no symbol data) calls %s.%s of %s; reach: finding %s, module symbol %+v", f.OSV, tr.Package, name, tr.Module, rf.Status, s)
			}
			continue
		}
		s := findSymbol(rf, tr.Package, name)
		if s == nil {
			// The entry lists the package without symbols.
			s = findSymbol(rf, tr.Package, "")
		}
		if s == nil || s.Status.Rank() < report.Linked.Rank() || rf.Status.Rank() < report.Linked.Rank() {
			t.Errorf("govulncheck: %s calls %s.%s; reach: finding %s, symbol %+v", f.OSV, tr.Package, name, rf.Status, s)
		}
	}
	if absent > 0 {
		t.Logf("%d standard-library entries govulncheck reports without any of their packages in the binary", absent)
	}
	return symbols
}

// binaryPackages lists the packages that have functions in bin.
func binaryPackages(t *testing.T, bin string) map[string]bool {
	t.Helper()
	b, err := binfo.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pkgs := map[string]bool{}
	for _, f := range b.Funcs {
		if p := match.FuncPackage(f.Name); p != "" {
			pkgs[p] = true
		}
	}
	return pkgs
}

// entryPackages reads entry id from the database directory and returns the
// packages it names for module.
func entryPackages(t *testing.T, db, id, module string) []string {
	t.Helper()
	e := readEntry(t, db, id)
	var pkgs []string
	for _, a := range e.Affected {
		if a.Module.Path == module && a.EcosystemSpecific != nil {
			for _, p := range a.EcosystemSpecific.Packages {
				pkgs = append(pkgs, p.Path)
			}
		}
	}
	if len(pkgs) == 0 {
		t.Errorf("%s names no %s packages: reach should report it", id, module)
	}
	return pkgs
}

// moduleSymbol returns the symbol of f that stands for the whole module
// package pkg is in: the one with the longest module path that holds it.
func moduleSymbol(f *report.Finding, pkg string) *report.Symbol {
	var best *report.Symbol
	for _, s := range f.Symbols {
		if s.Scope == report.ScopeModule && (pkg == s.Package || strings.HasPrefix(pkg, s.Package+"/")) &&
			(best == nil || len(s.Package) > len(best.Package)) {
			best = s
		}
	}
	return best
}

// readEntry reads entry id from the database directory db.
func readEntry(t *testing.T, db, id string) *osv.Entry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(db, "ID", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var e osv.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return &e
}

func trimPointer(recv string) string {
	if len(recv) > 0 && recv[0] == '*' {
		return recv[1:]
	}
	return recv
}

// namedIn reports whether f's symbol is among the symbol-level findings fs.
func namedIn(fs []gvFinding, f gvFinding) bool {
	for _, g := range fs {
		if g.OSV == f.OSV && len(g.Trace) > 0 && g.Trace[0] == f.Trace[0] {
			return true
		}
	}
	return false
}
