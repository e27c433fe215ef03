package cli

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/semver"
	"github.com/reach-sca/reach/internal/testprog"
)

// textlangDirs returns the fixture package textyaml/textlang, whose test
// binary calls the vulnerable yaml.Unmarshal and language.Parse, and the
// program built from the same package.
func textlangDirs(t *testing.T) (pkg, prog string) {
	pkg = filepath.Join(testprog.Dir(t, "textyaml"), "textlang")
	return pkg, filepath.Join(pkg, "cmd", "textlang")
}

// TestScanTestBinary checks that a test binary (go test -c), whose build
// information lists no dependencies, gets the findings of its dependencies
// that the program built from the same code gets, with the versions marked
// inferred; and that every finding govulncheck makes on that program for a
// module other than the standard library is in the test binary's report.
func TestScanTestBinary(t *testing.T) {
	db := realDB(t)
	testprog.Govulncheck(t) // skips (or fails under CI) before anything is built
	pkgDir, progDir := textlangDirs(t)
	for _, tc := range []string{"", "go1.21.0"} {
		t.Run("toolchain="+cmp.Or(tc, "local"), func(t *testing.T) {
			prog := testprog.Build(t, progDir, testprog.Variant{Name: "prog-" + tc, Toolchain: tc})
			pb := scanJSON(t, db, prog).Binaries[0]
			want := depFindings(pb)
			if !slices.ContainsFunc(want, func(s string) bool { return strings.HasPrefix(s, "GO-2021-0113 ") }) {
				t.Fatalf("the program's report lacks GO-2021-0113 (language.Parse); the comparison proves little: %q", want)
			}
			var gvDeps []gvFinding
			for _, f := range testprog.GovulncheckBinary(t, db, prog) {
				if len(f.Trace) > 0 && f.Trace[0].Module != "stdlib" && f.Trace[0].Module != "toolchain" {
					gvDeps = append(gvDeps, f)
				}
			}
			if len(gvDeps) == 0 {
				t.Fatalf("govulncheck found nothing outside the standard library in %s", prog)
			}

			for _, v := range []testprog.Variant{
				{Name: "plain"},
				{Name: "trimpath", Trimpath: true},
				{Name: "stripped", Stripped: true},
				{Name: "pie", PIE: true},
			} {
				t.Run(v.Name, func(t *testing.T) {
					v.Name = "test-" + v.Name + "-" + tc
					v.Test, v.Toolchain = true, tc
					bin := testprog.Build(t, pkgDir, v)
					// govulncheck sees the test binary's standard library
					// only: reach must agree with it there.
					var gvStd []gvFinding
					gvOthers := 0
					otherOS := 0
					for _, f := range testprog.GovulncheckBinary(t, db, bin) {
						switch {
						case len(f.Trace) == 0 || !report.IsGo(f.Trace[0].Module):
							gvOthers++
						case !forLinux(t, db, f.OSV, f.Trace[0].Module):
							// Go before 1.24 writes no GOOS into a test
							// binary: govulncheck then checks entries of
							// every platform; reach reads Linux from the ELF.
							otherOS++
						default:
							gvStd = append(gvStd, f)
						}
					}
					t.Logf("govulncheck on the test binary: %d standard-library findings (and %d for other systems only), %d others", len(gvStd), otherOS, gvOthers)
					r := scanJSON(t, db, bin)
					b := r.Binaries[0]
					if !v.Stripped {
						// Without symbols, govulncheck assumes every
						// vulnerable function of a package is present
						// (see TestAgreesWithGovulncheck).
						checkAgreement(t, db, bin, b, gvStd)
					}
					if b.GoVersion != pb.GoVersion {
						t.Errorf("go version %q, the program's %q", b.GoVersion, pb.GoVersion)
					}
					checkInferredModules(t, b, pb)
					if got := depFindings(b); !slices.Equal(got, want) {
						t.Errorf("findings outside the standard library:\n got %q\nwant %q (the program's)", got, want)
					}
					if n := checkAgreement(t, db, prog, b, gvDeps); n == 0 {
						t.Errorf("no symbol-level finding of govulncheck checked")
					}
					goVersion, err := semver.FromGo(pb.GoVersion)
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range b.Findings {
						if f.Module == "stdlib" && f.Version != goVersion {
							t.Errorf("%s: stdlib at %s, want %s", f.OSV, f.Version, goVersion)
						}
					}
					if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "inferred") }) {
						t.Errorf("no note says that versions were inferred: %q", r.Notes)
					}
					out, _, _ := reach(t, "scan", "-db", db, "-fail-on", "never", bin)
					if !strings.Contains(out, "golang.org/x/text@v0.3.5 (version inferred from source file paths)") {
						t.Errorf("the text report does not say that x/text's version is inferred:\n%s", out)
					}
				})
			}
		})
	}
}

// TestScanVendoredTestBinary checks that a vendored test binary, whose
// source file paths carry no module versions without -trimpath, gets a
// note naming the packages it could not check, and that with -trimpath
// (paths path@version/...) the modules are found again.
func TestScanVendoredTestBinary(t *testing.T) {
	db := realDB(t)
	pkgDir, _ := textlangDirs(t)

	bin := testprog.Build(t, pkgDir, testprog.Variant{Name: "test-vendor", Test: true, Vendor: true})
	r := scanJSON(t, db, bin)
	b := r.Binaries[0]
	if got := depFindings(b); len(got) != 0 {
		t.Errorf("findings outside the standard library without any module version: %q", got)
	}
	var note string
	for _, n := range r.Notes {
		if strings.Contains(n, "not checked") {
			note = n
		}
	}
	for _, pkg := range []string{"golang.org/x/text/language", "gopkg.in/yaml.v2"} {
		if !strings.Contains(note, pkg) {
			t.Errorf("no note names %s as unchecked: %q", pkg, r.Notes)
		}
	}
	// The note names the test binary by its package; the packages it
	// lists follow.
	if _, unchecked, _ := strings.Cut(note, "were not checked"); strings.Contains(unchecked, "example.com/textyaml") {
		t.Errorf("the note names the main module's packages: %q", note)
	}

	tbin := testprog.Build(t, pkgDir, testprog.Variant{Name: "test-vendor-trimpath", Test: true, Vendor: true, Trimpath: true})
	tb := scanJSON(t, db, tbin).Binaries[0]
	if f := findFinding(tb, "GO-2021-0113"); f == nil || f.Status != report.Linked || f.Version != "v0.3.5" {
		t.Errorf("vendored with -trimpath: GO-2021-0113 %+v", f)
	}
}

// checkInferredModules checks that the test binary b has every module of
// the program pb at the same version, marked inferred.
func checkInferredModules(t *testing.T, b, pb *report.Binary) {
	t.Helper()
	if len(pb.Modules) == 0 {
		t.Fatalf("the program %s lists no modules", pb.Path)
	}
	for _, pm := range pb.Modules {
		m := b.Module(pm.Path)
		if m == nil || m.Version != pm.Version || !m.Inferred || pm.Inferred {
			t.Errorf("module %s: %+v, the program's %+v (want the same version, inferred)", pm.Path, m, pm)
		}
	}
	if len(b.Modules) != len(pb.Modules) {
		t.Errorf("modules %+v, the program's %+v", b.Modules, pb.Modules)
	}
}

// depFindings lists b's findings outside the standard library, each with
// its module, version, fix, status and symbols, sorted.
func depFindings(b *report.Binary) []string {
	var out []string
	for _, f := range b.Findings {
		if report.IsGo(f.Module) {
			continue
		}
		var syms []string
		for _, s := range f.Symbols {
			syms = append(syms, fmt.Sprintf("%s.%s:%s", s.Package, s.Name, s.Status))
		}
		slices.Sort(syms)
		out = append(out, fmt.Sprintf("%s %s@%s fixed %s %s %v", f.OSV, f.Module, f.Version, f.FixedVersion, f.Status, syms))
	}
	slices.Sort(out)
	return out
}

// forLinux reports whether entry id of the database directory db has an
// import of module that applies to Linux.
func forLinux(t *testing.T, db, id, module string) bool {
	t.Helper()
	for _, a := range readEntry(t, db, id).Affected {
		if a.Module.Path != module || a.EcosystemSpecific == nil {
			continue
		}
		for _, p := range a.EcosystemSpecific.Packages {
			if len(p.GOOS) == 0 || slices.Contains(p.GOOS, "linux") {
				return true
			}
		}
	}
	return false
}
