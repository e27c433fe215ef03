package observe

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"

	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

// The entries of testdata/wholedb have no symbol data: GO-2099-0101 names
// the module example.com/whole and no package, GO-2099-0102 its package
// internal/deep without symbols.
const (
	wholeModuleID  = "GO-2099-0101"
	wholePackageID = "GO-2099-0102"
	wholeModule    = "example.com/whole"
	deepPackage    = "example.com/whole/internal/deep"
)

var wholeOnce struct {
	sync.Once
	dir string
	err error
}

// wholeApp serves testdata/whole as example.com/whole@v1.2.0 from the
// tests' module proxy and returns the directory of a copy of
// testdata/wholeapp, which uses it.
func wholeApp(t testing.TB) string {
	t.Helper()
	wholeOnce.Do(func() {
		v := module.Version{Path: wholeModule, Version: "v1.2.0"}
		if err := testprog.ServeModule(filepath.Join(fixtureDir, "proxy"), v, filepath.Join("testdata", "whole")); err != nil {
			wholeOnce.err = err
			return
		}
		wholeOnce.dir = filepath.Join(fixtureDir, "wholeapp")
		wholeOnce.err = os.CopyFS(wholeOnce.dir, os.DirFS(filepath.Join("testdata", "wholeapp")))
	})
	if wholeOnce.err != nil {
		t.Fatal(wholeOnce.err)
	}
	return wholeOnce.dir
}

func wholeDB(t testing.TB) *vulndb.Client {
	t.Helper()
	db, err := vulndb.New(filepath.Join("testdata", "wholedb"), vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// coverCounts runs the coverage build cover with args and returns the
// count of every block of the covered packages, keyed by
// "importpath/file.go:line.col,line.col".
func coverCounts(t *testing.T, cover string, args ...string) map[string]uint64 {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(cover, args...)
	cmd.Env = append(os.Environ(), "GOCOVERDIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", cover, args, err, out)
	}
	prof := filepath.Join(dir, "profile.txt")
	if out, err := exec.Command("go", "tool", "covdata", "textfmt", "-i="+dir, "-o="+prof).CombinedOutput(); err != nil {
		t.Fatalf("go tool covdata textfmt: %v\n%s", err, out)
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// "example.com/whole/whole.go:12.34,15.2 3 7", after a "mode:" line.
		f := strings.Fields(sc.Text())
		if len(f) != 3 || strings.HasPrefix(f[0], "mode:") {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("coverage line %q: %v", sc.Text(), err)
		}
		counts[f[0]] += n
	}
	if len(counts) == 0 {
		t.Fatalf("no coverage blocks from %s %v", cover, args)
	}
	return counts
}

// ranBeyond reports whether a block of package pkg (of its packages too
// when sub is set) ran more often in counts than in base, the counts of a
// run that only initializes the program: code of pkg ran other than its
// initialization.
func ranBeyond(base, counts map[string]uint64, pkg string, sub bool) bool {
	for block, n := range counts {
		file, _, _ := strings.Cut(block, ":")
		if dir := path.Dir(file); (dir == pkg || sub && strings.HasPrefix(dir, pkg+"/")) && n > base[block] {
			return true
		}
	}
	return false
}

// TestWholeModuleAgainstCoverage runs a program that uses a module whose
// entries have no symbol data, in one way per mode, and checks reach's
// status of the whole-module and whole-package findings against Go's
// coverage of the same source: reached exactly when code of the module
// (of the package) ran other than its initialization, which the "init"
// mode runs alone and every other mode runs too.
func TestWholeModuleAgainstCoverage(t *testing.T) {
	testprog.RequireRoot(t)
	dir := wholeApp(t)
	modes := []string{"init", "small", "hook", "callback", "hidden", "generic", "stringer", "work"}

	// The oracle: a coverage build of the same source, each mode compared
	// with the run of initialization alone.
	cover := filepath.Join(t.TempDir(), "wholeapp-cover")
	// Package main is covered too: a binary whose package main is not
	// writes no counters (Go 1.26).
	build := exec.Command("go", "build", "-o", cover, "-cover", "-covermode=count", "-coverpkg="+wholeModule+"/...,example.com/wholeapp", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("coverage build: %v\n%s", err, out)
	}
	base := coverCounts(t, cover, "init")
	type ran struct{ module, deep bool }
	oracle := map[string]ran{}
	reachedModes := 0
	for _, m := range modes {
		c := coverCounts(t, cover, m)
		oracle[m] = ran{ranBeyond(base, c, wholeModule, true), ranBeyond(base, c, deepPackage, false)}
		if oracle[m].module {
			reachedModes++
		}
	}
	t.Logf("coverage: %+v", oracle)
	if oracle["init"].module || reachedModes == 0 || reachedModes == len(modes) {
		t.Fatalf("the program does not exercise both outcomes: coverage says %+v", oracle)
	}

	variants := []testprog.Variant{testprog.Plain, testprog.PIE, testprog.Stripped, {Name: "go1.21.0", Toolchain: "go1.21.0"}}
	if testing.Short() {
		variants = variants[:1]
	}
	for _, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			if v.Toolchain != "" {
				// The go command checks a toolchain it downloads against
				// the checksum database, which the fixture proxy turns
				// off for the fixture modules.
				t.Setenv("GOSUMDB", "sum.golang.org")
				t.Setenv("GONOSUMDB", "example.com")
			}
			path := testprog.Build(t, dir, v)
			for _, m := range modes {
				t.Run(m, func(t *testing.T) {
					s := newSession(t, wholeDB(t), Options{Report: report.Report{Mode: "run"}})
					r := runApp(t, s, path, m)
					checkWhole(t, r, path, wholeModuleID, report.ScopeModule, oracle[m].module)
					checkWhole(t, r, path, wholePackageID, report.ScopePackage, oracle[m].deep)
				})
			}
		})
	}

	// In count mode the whole-module groups stay one-shot: one hit, and
	// initialization is still not a reach. That hit is a lower bound of
	// the calls into the module, which count mode's hits otherwise count
	// exactly: the report must say "at least".
	path := testprog.Build(t, dir, testprog.Plain)
	for _, m := range []string{"init", "hook"} {
		t.Run("count/"+m, func(t *testing.T) {
			s := newSession(t, wholeDB(t), Options{Report: report.Report{Mode: "run"}, Mode: probe.Count})
			r := runApp(t, s, path, m)
			checkWhole(t, r, path, wholeModuleID, report.ScopeModule, oracle[m].module)
			for _, f := range binaryOf(t, r, path).Findings {
				if f.OSV == wholeModuleID && f.Status == report.Reached && !f.Symbols[0].HitsLowerBound {
					t.Errorf("%s: %d hit counted exactly (hits_lower_bound unset) in count mode, where the module's group is one-shot", f.OSV, f.Symbols[0].Hits)
				}
			}
		})
	}
}

// checkWhole checks finding id of a binary, whose one symbol covers a whole
// package or module: reached with one hit entered at code of it when want,
// else linked.
func checkWhole(t *testing.T, r *report.Report, path, id string, scope report.Scope, want bool) {
	t.Helper()
	var f *report.Finding
	for _, x := range binaryOf(t, r, path).Findings {
		if x.OSV == id {
			f = x
		}
	}
	if f == nil {
		t.Fatalf("%s: no finding", id)
	}
	if f.WholeModule != (scope == report.ScopeModule) || len(f.Symbols) != 1 || f.Symbols[0].Scope != scope {
		t.Fatalf("%s: whole module %v, symbols %+v; want one symbol of scope %s", id, f.WholeModule, f.Symbols, scope)
	}
	s := f.Symbols[0]
	if !want {
		if f.Status != report.Linked || s.Status != report.Linked {
			t.Errorf("%s: %s (symbol %s, stack %v); coverage: no code of it ran beyond initialization, want linked", id, f.Status, s.Status, s.Stack)
		}
		return
	}
	if f.Status != report.Reached || s.Status != report.Reached {
		t.Fatalf("%s: %s; coverage: code of it ran beyond initialization, want reached", id, f.Status)
	}
	if s.Hits != 1 || len(s.Stack) == 0 {
		t.Fatalf("%s: %d hits, stack %v; want one hit (one-shot per finding) with its stack", id, s.Hits, s.Stack)
	}
	pkg := match.FuncPackage(s.Stack[0].Function)
	if pkg != s.Package && !strings.HasPrefix(pkg, s.Package+"/") {
		t.Errorf("%s: entered at %s, not code of %s", id, s.Stack[0].Function, s.Package)
	}
	for _, fr := range s.Stack {
		if match.IsInit(fr.Function) {
			t.Errorf("%s: the hit recorded ran under %s: initialization", id, fr.Function)
		}
	}
}

// TestWholeModuleSitesCap checks that a cap on probe sites too small for a
// whole module's entry points watches some of them and says so.
func TestWholeModuleSitesCap(t *testing.T) {
	testprog.RequireRoot(t)
	path := testprog.Build(t, wholeApp(t), testprog.Plain)
	s := newSession(t, wholeDB(t), Options{Report: report.Report{Mode: "run"}, MaxSites: 2})
	r := runApp(t, s, path, "init")
	var notes []string
	for _, n := range r.Notes {
		if strings.Contains(n, wholeModuleID) && strings.Contains(n, "entry sites are watched, within -max-sites 2") {
			notes = append(notes, n)
		}
	}
	if len(notes) != 1 {
		t.Fatalf("notes %q: want one saying that %s is watched at some of its entry sites", r.Notes, wholeModuleID)
	}
	t.Log(notes[0])
	// Each of the two whole groups got one site. The module, watched only
	// in part and not seen running, is not_watched: not linked, which
	// would say it did not run.
	for _, f := range binaryOf(t, r, path).Findings {
		if f.OSV == wholeModuleID && (f.Status != report.NotWatched || len(f.Symbols[0].Unwatched) == 0) {
			t.Errorf("%s: status %s, unwatched %q; want not_watched, saying why", f.OSV, f.Status, f.Symbols[0].Unwatched)
		}
	}
}
