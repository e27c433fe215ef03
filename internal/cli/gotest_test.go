package cli

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// The tests of this file run the test suite of testdata/progs/gosuite (three
// packages, two of them calling vulnerable x/text and yaml.v2 code) with
// go test under reach, in the two forms a CI job uses: reach run -- go
// test ./..., and go test -exec 'reach run -merge …' ./....

// gosuiteCover is what the oracle's coverage builds of gosuite's test
// binaries record: the vulnerable packages they call.
const gosuiteCover = "golang.org/x/text/language,gopkg.in/yaml.v2"

// gosuitePkgs are gosuite's packages with tests.
var gosuitePkgs = []string{"example.com/gosuite/lang", "example.com/gosuite/plain", "example.com/gosuite/yamlcfg"}

// TestRunGoTest runs gosuite's tests under `reach run -- go test ./...` and
// under `go test -exec 'reach run -merge …'`, passing and failing, with the
// local toolchain and go1.21.0, and checks that:
//   - reach exits as go test alone does;
//   - the report lists exactly the test binaries, named by package, and
//     none of the go command's own programs, which a note counts;
//   - each test binary's symbols of x/text and yaml.v2 are reached exactly
//     where Go's coverage of the same tests says their functions ran, with
//     callsites in the package's code, although go test deleted the
//     binaries before reach wrote its report;
//   - the -exec form's merged report has the same findings, statuses and
//     binaries as the direct form's.
func TestRunGoTest(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "gosuite")
	reach := reachBin(t)
	for _, tc := range []string{"", "go1.21.0"} {
		t.Run(cmp.Or(tc, "local"), func(t *testing.T) {
			env := []string{"GOTOOLCHAIN=" + cmp.Or(tc, "local")}
			// The oracle: coverage builds of the same test binaries, run
			// as go test runs them.
			covered := map[string]map[string]bool{}
			for _, pkg := range []string{"lang", "yamlcfg"} {
				bin := testprog.Build(t, filepath.Join(dir, pkg), testprog.Variant{Name: "gosuite-cover-" + tc, Test: true, Toolchain: tc, CoverPkg: gosuiteCover})
				covered["example.com/gosuite/"+pkg] = testCoverage(t, tc, filepath.Join(dir, pkg), bin)
			}
			for _, fail := range []bool{false, true} {
				if fail && tc != "" {
					continue // exit statuses do not depend on the toolchain
				}
				t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
					env := env
					if fail {
						env = append(env, "REACH_GOSUITE_FAIL=1")
					}
					want, plainOut := runIn(t, dir, env, "go", "test", "-count=1", "./...")
					if (want != 0) != fail {
						t.Fatalf("go test alone exited %d, want failure %v:\n%s", want, fail, plainOut)
					}
					tmp := t.TempDir()
					direct := filepath.Join(tmp, "direct.json")
					code, out := runIn(t, dir, env, reach, "run", "-db", db, "-format", "json", "-o", direct, "--", "go", "test", "-count=1", "./...")
					if code != want {
						t.Errorf("reach run -- go test exited %d, go test alone %d\n%s", code, want, out)
					}
					merged := filepath.Join(tmp, "merged.json")
					execFlag := strings.Join([]string{reach, "run", "-merge", "-db", db, "-format", "json", "-o", merged, "--"}, " ")
					code, out = runIn(t, dir, env, "go", "test", "-count=1", "-exec", execFlag, "./...")
					if code != want {
						t.Errorf("go test -exec 'reach run -merge' exited %d, go test alone %d\n%s", code, want, out)
					}
					dr, mr := readReport(t, direct), readReport(t, merged)
					t.Run("direct", func(t *testing.T) { checkGoTestReport(t, dr, dir, covered, true) })
					t.Run("exec", func(t *testing.T) { checkGoTestReport(t, mr, dir, covered, false) })
					if d, m := findingsOf(dr), findingsOf(mr); !slices.Equal(d, m) {
						t.Errorf("the -exec form's findings differ from the direct form's:\ndirect %q\n-exec  %q", d, m)
					}
				})
			}
		})
	}
}

// runIn runs the command name with args in dir, with GOFLAGS=-mod=mod,
// CGO_ENABLED=0 and env added to the environment, and returns its exit
// code and combined output.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=-mod=mod", "CGO_ENABLED=0"}, env...)...)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// checkGoTestReport checks a report of gosuite's tests (see
// TestRunGoTest); direct is whether reach ran go test (and saw its tools).
func checkGoTestReport(t *testing.T, r *report.Report, dir string, covered map[string]map[string]bool, direct bool) {
	t.Helper()
	var names []string
	for _, b := range r.Binaries {
		names = append(names, b.TestOf)
		if !strings.HasSuffix(b.Path, ".test") {
			t.Errorf("binary %s (%s): not a test binary", b.Path, b.TestOf)
		}
		if _, err := os.Stat(b.Path); err == nil {
			t.Errorf("test binary %s still exists: the check that reach does not need it after exit proves nothing", b.Path)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, gosuitePkgs) {
		t.Fatalf("binaries named %q, want gosuite's test binaries %q and nothing else; notes %q", names, gosuitePkgs, r.Notes)
	}
	if direct && !notesMention(r, "not observed: the Go toolchain's own programs", "link (") {
		t.Errorf("no note of the go command's programs left unobserved: %q", r.Notes)
	}
	for _, b := range r.Binaries {
		if b.TestOf == "example.com/gosuite/plain" {
			if deps := depFindings(b); len(deps) != 0 {
				t.Errorf("plain's test binary: findings %q, want none outside the standard library", deps)
			}
			continue
		}
		checkDepsAgainstCoverage(t, b, covered[b.TestOf])
	}
	lang := filepath.Join(dir, "lang", "lang.go")
	_, parse := observedSymbol(t, testBinary(t, r, "example.com/gosuite/lang"), textOSV, textPkg, "Parse")
	wantReached(t, parse, "example.com/gosuite/lang.Canon", lang, sourceLine(t, lang, "language.Parse("), 0)
	cfg := filepath.Join(dir, "yamlcfg", "cfg.go")
	_, unmarshal := observedSymbol(t, testBinary(t, r, "example.com/gosuite/yamlcfg"), "GO-2021-0061", "gopkg.in/yaml.v2", "Unmarshal")
	wantReached(t, unmarshal, "example.com/gosuite/yamlcfg.Load", cfg, sourceLine(t, cfg, "yaml.Unmarshal("), 0)
}

// testBinary returns the test binary of package pkg in r.
func testBinary(t *testing.T, r *report.Report, pkg string) *report.Binary {
	t.Helper()
	for _, b := range r.Binaries {
		if b.TestOf == pkg {
			return b
		}
	}
	t.Fatalf("no test binary of %s in the report", pkg)
	return nil
}

// findingsOf lists, sorted, each symbol of each finding of r as "package
// under test: OSV (finding status) symbol: status".
func findingsOf(r *report.Report) []string {
	var out []string
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			out = append(out, fmt.Sprintf("%s: %s (%s)", b.Name(), f.OSV, f.Status))
			for _, s := range f.Symbols {
				out = append(out, fmt.Sprintf("%s: %s (%s) %s.%s: %s", b.Name(), f.OSV, f.Status, s.Package, s.Name, s.Status))
			}
		}
	}
	slices.Sort(out)
	return out
}
