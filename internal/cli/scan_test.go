package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

func TestScanTextYAML(t *testing.T) {
	db := realDB(t)
	dir := testprog.Dir(t, "textyaml")
	for _, v := range append(testprog.Variants, testprog.StrippedPIE) {
		t.Run(v.Name, func(t *testing.T) {
			bin := testprog.Build(t, dir, v)
			r := scanJSON(t, db, bin)
			if r.Schema != report.Schema || r.Mode != "scan" || len(r.Binaries) != 1 {
				t.Fatalf("report header: schema %q mode %q binaries %d", r.Schema, r.Mode, len(r.Binaries))
			}
			b := r.Binaries[0]
			if b.Stripped != v.Stripped || b.PIE != v.PIE {
				t.Errorf("stripped=%v pie=%v, want %v %v", b.Stripped, b.PIE, v.Stripped, v.PIE)
			}
			if b.MainModule != "example.com/textyaml" {
				t.Errorf("main module %q", b.MainModule)
			}
			f := findFinding(b, "GO-2021-0113")
			if f == nil {
				t.Fatalf("GO-2021-0113 (x/text language.Parse) not reported; findings: %v", ids(b))
			}
			if f.Status != report.Linked || f.Module != "golang.org/x/text" || f.Version != "v0.3.5" || f.FixedVersion != "v0.3.7" {
				t.Errorf("GO-2021-0113: status %s module %s@%s fixed %s", f.Status, f.Module, f.Version, f.FixedVersion)
			}
			if s := findSymbol(f, "golang.org/x/text/language", "Parse"); s == nil || s.Status != report.Linked {
				t.Errorf("language.Parse not linked in GO-2021-0113: %+v", f.Symbols)
			}
			// yaml.v2 v2.2.2: Unmarshal is called, so linked.
			y := findFinding(b, "GO-2021-0061")
			if y == nil || y.Status != report.Linked || findSymbol(y, "gopkg.in/yaml.v2", "Unmarshal") == nil {
				t.Errorf("GO-2021-0061 (yaml.v2 Unmarshal) not linked: %+v", y)
			}
			// GO-2026-5970 is in golang.org/x/text/unicode/norm, which the
			// program does not use: the module is affected, nothing linked.
			if g := findFinding(b, "GO-2026-5970"); g == nil || g.Status != report.Imported || len(g.Symbols) != 0 {
				t.Errorf("GO-2026-5970 should be imported with no symbols: %+v", g)
			}
			// x/text v0.3.5 is past GO-2020-0015's fix (v0.3.3).
			if g := findFinding(b, "GO-2020-0015"); g != nil {
				t.Errorf("GO-2020-0015 reported for x/text v0.3.5, fixed in v0.3.3: %+v", g)
			}
		})
	}
}

func TestScanOldToolchainStdlib(t *testing.T) {
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "stdmail"), testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"})
	r := scanJSON(t, db, bin)
	b := r.Binaries[0]
	if b.GoVersion != "go1.21.0" {
		t.Errorf("go version %q", b.GoVersion)
	}
	f := findFinding(b, "GO-2024-2609")
	if f == nil || f.Module != "stdlib" || f.Status != report.Linked {
		t.Fatalf("GO-2024-2609 (net/mail) not linked: %+v", f)
	}
	if findSymbol(f, "net/mail", "ParseAddress") == nil {
		t.Errorf("net/mail.ParseAddress missing: %+v", f.Symbols)
	}
	if f.Version != "v1.21.0" || f.FixedVersion != "v1.21.8" {
		t.Errorf("version %s fixed %s, want v1.21.0 fixed v1.21.8", f.Version, f.FixedVersion)
	}
}

// TestUsageErrors checks that usage errors exit 2 without the
// vulnerability database: they run with REACH_TEST_VULNDB unset, against
// a -db that does not exist.
func TestUsageErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodb")
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	for _, tc := range []struct {
		name     string
		args     []string
		inStderr string
	}{
		{"no-args", []string{"scan", "-db", db}, "no binary"},
		{"bad-format", []string{"scan", "-db", db, "-format", "xml", bin}, "xml"},
		{"bad-threshold", []string{"scan", "-db", db, "-fail-on", "maybe", bin}, "maybe"},
		{"unknown-command", []string{"scna"}, "scna"},
		{"db-unknown-subcommand", []string{"db", "-db", db, "nosuch"}, "nosuch"},
		{"db-lookup-no-version", []string{"db", "-db", db, "lookup", "golang.org/x/text"}, "MODULE@VERSION"},
		{"db-lookup-bad-version", []string{"db", "-db", db, "lookup", "golang.org/x/text@notaversion"}, "notaversion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := reach(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (usage); stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.inStderr) || strings.Contains(stderr, "nodb") {
				t.Errorf("stderr does not mention %q, or mentions the database:\n%s", tc.inStderr, stderr)
			}
		})
	}
}

func TestScanExitCodes(t *testing.T) {
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	notGo := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notGo, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"found", []string{"scan", "-db", db, "-format", "json", bin}, 3, ""},
		{"found-sarif", []string{"scan", "-db", db, "-format", "sarif", bin}, 3, ""},
		{"threshold-reached", []string{"scan", "-db", db, "-fail-on", "reached", bin}, 0, ""},
		{"never", []string{"scan", "-db", db, "-fail-on", "never", bin}, 0, ""},
		{"not-go", []string{"scan", "-db", db, notGo}, 1, notGo},
		{"missing", []string{"scan", "-db", db, "/nonexistent/prog"}, 1, "/nonexistent/prog"},
		{"bad-db", []string{"scan", "-db", "/nonexistent/db", bin}, 1, "/nonexistent/db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := reach(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.inStderr) {
				t.Errorf("stderr does not mention %q:\n%s", tc.inStderr, stderr)
			}
		})
	}
}

func TestScanOutputFile(t *testing.T) {
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	out := filepath.Join(t.TempDir(), "report.json")
	stdout, stderr, code := reach(t, "scan", "-db", db, "-format", "json", "-o", out, bin)
	if code != 3 {
		t.Fatalf("exit %d, want 3:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout not empty with -o: %q", stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"GO-2021-0113"`) {
		t.Errorf("report file lacks GO-2021-0113")
	}
}

func ids(b *report.Binary) []string {
	var s []string
	for _, f := range b.Findings {
		s = append(s, f.OSV+":"+string(f.Status))
	}
	return s
}
