package cli

import (
	"cmp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// textlangCover is the coverage the oracle builds of textlang's test
// binary record: the vulnerable modules' packages it calls.
const textlangCover = "golang.org/x/text/language,gopkg.in/yaml.v2"

// TestRunTestBinary runs the test binary of textyaml/textlang under reach
// run, once with the test that calls yaml.Unmarshal and language.Parse and
// once with one that calls neither, and checks every symbol of the
// findings of x/text and yaml.v2 against Go's coverage of the same test
// run: reached exactly when coverage counted its function, with the
// callsite in textlang.Lang for the two the test calls directly.
func TestRunTestBinary(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	pkgDir, _ := textlangDirs(t)
	src := filepath.Join(pkgDir, "lang.go")
	for _, tc := range []string{"", "go1.21.0"} {
		for _, v := range []testprog.Variant{{Name: "plain"}, {Name: "stripped-pie", Stripped: true, PIE: true}} {
			t.Run(cmp.Or(tc, "local")+"/"+v.Name, func(t *testing.T) {
				v.Name = "test-" + v.Name + "-" + tc
				v.Test, v.Toolchain = true, tc
				bin := testprog.Build(t, pkgDir, v)
				covBin := testprog.Build(t, pkgDir, testprog.Variant{Name: "test-cover-" + tc, Test: true, Toolchain: tc, CoverPkg: textlangCover})
				for _, run := range []string{"TestLang", "TestNothing"} {
					t.Run(run, func(t *testing.T) {
						covered := testCoverage(t, tc, pkgDir, covBin, "-test.run=^"+run+"$")
						out := filepath.Join(t.TempDir(), "report.json")
						res := runReach(t, "run", "-db", db, "-format", "json", "-o", out, "--", bin, "-test.run=^"+run+"$")
						if res.code != 0 || !strings.Contains(res.stdout, "PASS") {
							t.Fatalf("exit %d, stdout %q, want the test's PASS\n%s", res.code, res.stdout, res.stderr)
						}
						b := observedBinary(t, readReport(t, out), bin)
						if m := b.Module("golang.org/x/text"); m == nil || m.Version != "v0.3.5" || !m.Inferred {
							t.Errorf("x/text module %+v, want v0.3.5 inferred", m)
						}
						checkDepsAgainstCoverage(t, b, covered)
						_, parse := observedSymbol(t, b, textOSV, textPkg, "Parse")
						_, unmarshal := observedSymbol(t, b, "GO-2021-0061", "gopkg.in/yaml.v2", "Unmarshal")
						if run == "TestLang" {
							wantReached(t, parse, "example.com/textyaml/textlang.Lang", src, sourceLine(t, src, "language.Parse("), 0)
							wantReached(t, unmarshal, "example.com/textyaml/textlang.Lang", src, sourceLine(t, src, "yaml.Unmarshal("), 0)
						}
					})
				}
			})
		}
	}
}

// TestRunGoTestExec runs textlang's tests with go test -exec 'reach run',
// the way a CI job watches its tests, and checks that language.Parse is
// reached in the test binary go test builds.
func TestRunGoTestExec(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	pkgDir, _ := textlangDirs(t)
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command("go", "test", "-count=1", "-run=^TestLang$",
		"-exec", strings.Join([]string{reachBin(t), "run", "-db", db, "-format", "json", "-o", out, "--"}, " "), ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -exec reach run: %v\n%s", err, b)
	}
	r := readReport(t, out)
	if len(r.Binaries) != 1 {
		t.Fatalf("binaries %d, want the test binary", len(r.Binaries))
	}
	b := r.Binaries[0]
	if m := b.Module("gopkg.in/yaml.v2"); m == nil || m.Version != "v2.2.2" || !m.Inferred {
		t.Errorf("yaml.v2 module %+v, want v2.2.2 inferred", m)
	}
	_, parse := observedSymbol(t, b, textOSV, textPkg, "Parse")
	src := filepath.Join(pkgDir, "lang.go")
	wantReached(t, parse, "example.com/textyaml/textlang.Lang", src, sourceLine(t, src, "language.Parse("), 0)
}

// checkDepsAgainstCoverage checks b's findings outside the standard
// library, which the coverage build records, against coverage: every
// symbol watched all the time, reached exactly when its function ran.
func checkDepsAgainstCoverage(t *testing.T, b *report.Binary, covered map[string]bool) {
	t.Helper()
	deps := *b
	deps.Findings = nil
	for _, f := range b.Findings {
		if !report.IsGo(f.Module) {
			deps.Findings = append(deps.Findings, f)
		}
	}
	_, watched := checkAgainstCoverage(t, &deps, covered, func(*report.Finding, *report.Symbol) bool { return true })
	if watched == 0 {
		t.Fatalf("no symbol of %s's findings checked against coverage", b.Path)
	}
	t.Logf("%d symbols agree with coverage", watched)
}

// testCoverage runs the coverage build of a test binary (of the package
// in dir, built with toolchain) with args and returns, for each function of
// the covered packages ("pkg.Name", "pkg.T.M"), whether it ran.
func testCoverage(t *testing.T, toolchain, dir, bin string, args ...string) map[string]bool {
	t.Helper()
	covDir := t.TempDir()
	run := exec.Command(bin, append(args, "-test.gocoverdir="+covDir)...)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return testprog.CoveredFuncs(t, toolchain, dir, covDir)
}
