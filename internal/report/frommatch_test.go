package report_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
)

func fixture() []*match.Result {
	bin := &binfo.Binary{
		Path:      "/srv/app",
		BuildID:   "abc/def",
		GoVersion: "go1.19.0",
		Main:      binfo.Module{Path: "example.com/app", Version: "v1.0.0"},
		Deps: []binfo.Module{
			{Path: "gopkg.in/yaml.v2", Version: "v2.2.2"},
			{Path: "golang.org/x/text", Version: "v0.3.5", Replace: &binfo.Module{Path: "example.com/fork/text", Version: "v0.3.6"}},
			{Path: "example.com/local", Version: "v1.0.0", Replace: &binfo.Module{Path: "../local"}},
		},
		PIE: true,
	}
	return []*match.Result{{
		Binary: bin,
		Findings: []*match.Finding{
			{
				Entry:  &osv.Entry{ID: "GO-2021-0113", Aliases: []string{"CVE-2020-28852"}, Summary: "Out-of-bounds read in golang.org/x/text/language"},
				Module: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "v0.3.7", Status: match.Linked,
				Symbols: []*match.Symbol{{Package: "golang.org/x/text/language", Name: "Parse"}, {Package: "golang.org/x/text/language", Name: "MatchStrings"}},
			},
			{
				Entry:  &osv.Entry{ID: "GO-2020-0036", Details: "Due to unbounded alias chasing, a maliciously crafted YAML file can cause excessive CPU use. More text."},
				Module: "gopkg.in/yaml.v2", Version: "v2.2.2", FixedVersion: "v2.2.8", Status: match.Imported,
			},
		},
	}}
}

func TestFromMatch(t *testing.T) {
	res := fixture()
	built, err := report.FromMatch(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(built.Binaries) != 1 {
		t.Fatalf("got %d binaries, want 1", len(built.Binaries))
	}
	b := built.Binaries[0]
	if b.Path != "/srv/app" || b.MainModule != "example.com/app" || b.MainVersion != "v1.0.0" || !b.PIE || b.GoVersion != "go1.19.0" || b.BuildID != "abc/def" {
		t.Errorf("binary header = %+v", b)
	}
	wantMods := []report.Module{
		{Path: "example.com/local", Version: "", Replace: "../local"},
		{Path: "golang.org/x/text", Version: "v0.3.6", Replace: "example.com/fork/text@v0.3.6"},
		{Path: "gopkg.in/yaml.v2", Version: "v2.2.2"},
	}
	if len(b.Modules) != len(wantMods) {
		t.Fatalf("modules = %+v, want %+v", b.Modules, wantMods)
	}
	for i := range wantMods {
		if b.Modules[i] != wantMods[i] {
			t.Errorf("module %d = %+v, want %+v", i, b.Modules[i], wantMods[i])
		}
	}
	if len(b.Findings) != 2 || b.Findings[0].OSV != "GO-2020-0036" || b.Findings[1].OSV != "GO-2021-0113" {
		t.Fatalf("findings not sorted by OSV ID: %+v", b.Findings)
	}
	imp, lnk := b.Findings[0], b.Findings[1]
	if imp.Status != report.Imported || len(imp.Symbols) != 0 {
		t.Errorf("imported finding = %+v", imp)
	}
	if want := "Due to unbounded alias chasing, a maliciously crafted YAML file can cause excessive CPU use."; imp.Summary != want {
		t.Errorf("summary from details = %q, want %q", imp.Summary, want)
	}
	if lnk.Status != report.Linked || lnk.FixedVersion != "v0.3.7" || lnk.Version != "v0.3.6" || lnk.Aliases[0] != "CVE-2020-28852" {
		t.Errorf("linked finding = %+v", lnk)
	}
	for i, s := range lnk.Symbols {
		if s.Status != report.Linked || s.Hits != 0 {
			t.Errorf("symbol %d = %+v, want linked without hits", i, s)
		}
	}

	// The targets lead a recorder to the right report symbol.
	ms := res[0].Findings[0].Symbols[1]
	tgt, ok := built.Refs[ms]
	if !ok {
		t.Fatal("no target for MatchStrings")
	}
	if tgt.Symbol.Name != "MatchStrings" || tgt.Finding != lnk || tgt.Binary != b {
		t.Errorf("target = %+v", tgt)
	}
	r := &report.Report{Binaries: built.Binaries}
	rec := report.NewRecorder(r)
	if err := rec.Record(tgt, report.Hit{Time: time.Unix(100, 0), PID: 7}); err != nil {
		t.Fatal(err)
	}
	if lnk.Status != report.Reached || tgt.Symbol.Status != report.Reached || lnk.Symbols[0].Status != report.Linked {
		t.Errorf("after a hit on MatchStrings: finding %s, symbols %s and %s", lnk.Status, lnk.Symbols[0].Status, lnk.Symbols[1].Status)
	}
	if got := len(built.Refs); got != 2 {
		t.Errorf("%d targets, want 2", got)
	}
}

func TestFromMatchErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func([]*match.Result) []*match.Result
	}{
		{"nil result", func(r []*match.Result) []*match.Result { return append(r, nil) }},
		{"no binary", func(r []*match.Result) []*match.Result { r[0].Binary = nil; return r }},
		{"no entry", func(r []*match.Result) []*match.Result { r[0].Findings[0].Entry = nil; return r }},
		{"bad status", func(r []*match.Result) []*match.Result { r[0].Findings[0].Status = "reached"; return r }},
		{"linked without symbols", func(r []*match.Result) []*match.Result { r[0].Findings[0].Symbols = nil; return r }},
		{"nil symbol", func(r []*match.Result) []*match.Result {
			r[0].Findings[0].Symbols = append(r[0].Findings[0].Symbols, nil)
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report.FromMatch(tt.mutate(fixture()))
			if !errors.Is(err, report.ErrBadResult) {
				t.Fatalf("err = %v, want report.ErrBadResult", err)
			}
		})
	}
}

func TestFromMatchEmpty(t *testing.T) {
	built, err := report.FromMatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	if built.Binaries == nil || len(built.Binaries) != 0 {
		t.Errorf("binaries = %#v, want empty non-nil", built.Binaries)
	}
}

// TestFromMatchInferred checks that modules inferred from source file
// paths are marked so, and that the notes name them and the packages that
// have no version.
func TestFromMatchInferred(t *testing.T) {
	bin := &binfo.Binary{
		Path:      "/tmp/lib.test",
		GoVersion: "go1.21.0",
		Main:      binfo.Module{Path: "example.com/app/lib", Inferred: true},
		Deps: []binfo.Module{
			{Path: "golang.org/x/text", Version: "v0.3.5", Inferred: true},
			{Path: "gopkg.in/yaml.v2", Version: "v2.2.2", Inferred: true},
		},
		Unversioned: []string{"example.com/a", "example.com/b", "example.com/c", "example.com/d", "example.com/e", "example.com/f"},
	}
	built, err := report.FromMatch([]*match.Result{{Binary: bin}})
	if err != nil {
		t.Fatal(err)
	}
	b := built.Binaries[0]
	if b.MainModule != "example.com/app/lib" || !b.MainInferred {
		t.Errorf("main module %q inferred=%v", b.MainModule, b.MainInferred)
	}
	for _, m := range b.Modules {
		if !m.Inferred {
			t.Errorf("module %+v not marked inferred", m)
		}
	}
	if len(built.Notes) != 2 {
		t.Fatalf("notes %q, want one on inferred modules and one on unversioned packages", built.Notes)
	}
	for _, want := range []string{"/tmp/lib.test", "golang.org/x/text@v0.3.5", "gopkg.in/yaml.v2@v2.2.2", "2 modules"} {
		if !strings.Contains(built.Notes[0], want) {
			t.Errorf("note %q lacks %q", built.Notes[0], want)
		}
	}
	for _, want := range []string{"6 packages", "example.com/e", "and 1 more"} {
		if !strings.Contains(built.Notes[1], want) {
			t.Errorf("note %q lacks %q", built.Notes[1], want)
		}
	}
	if strings.Contains(built.Notes[1], "example.com/f") {
		t.Errorf("note %q names more than 5 packages", built.Notes[1])
	}

	// Build information that lists everything gets no note.
	bin.Deps[0].Inferred, bin.Deps[1].Inferred, bin.Unversioned = false, false, nil
	built, err = report.FromMatch([]*match.Result{{Binary: bin}})
	if err != nil {
		t.Fatal(err)
	}
	if len(built.Notes) != 0 {
		t.Errorf("notes %q for complete build information", built.Notes)
	}
}
