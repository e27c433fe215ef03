package analysis_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
)

// textEntry affects golang.org/x/text before v0.3.7 through language.Parse.
var textEntry = &osv.Entry{ID: "GO-2021-0113", Affected: []osv.Affected{{
	Module: osv.Module{Path: "golang.org/x/text", Ecosystem: osv.Ecosystem},
	Ranges: []osv.Range{{Type: osv.RangeTypeSemver, Events: []osv.RangeEvent{{Introduced: "0"}, {Fixed: "0.3.7"}}}},
	EcosystemSpecific: &osv.EcosystemSpecific{Packages: []osv.Package{
		{Path: "golang.org/x/text/language", Symbols: []string{"Parse"}},
	}},
}}}

func synthetic(path, textVersion string, funcs ...string) *binfo.Binary {
	b := &binfo.Binary{
		Path:      path,
		GoVersion: "go1.21.0",
		Main:      binfo.Module{Path: "example.com/" + path, Version: "(devel)"},
		Deps:      []binfo.Module{{Path: "golang.org/x/text", Version: textVersion}},
	}
	for i, name := range funcs {
		f := binfo.Func{Name: name, Entry: 0x401000 + 0x1000*uint64(i)}
		f.End = f.Entry + 0x800
		b.Funcs = append(b.Funcs, f)
	}
	return b
}

// recordingDB serves entries and records the paths it was asked for.
type recordingDB struct {
	entries []*osv.Entry
	err     error
	asked   [][]string
}

func (d *recordingDB) ByModules(_ context.Context, paths []string) ([]*osv.Entry, error) {
	d.asked = append(d.asked, paths)
	return d.entries, d.err
}

// TestRun checks that Run asks for the modules match.ModulePaths gives,
// once for all binaries, and returns the match results and report
// binaries in the binaries' order, with a SymbolRef for each matched symbol.
func TestRun(t *testing.T) {
	bins := []*binfo.Binary{
		synthetic("linked", "v0.3.5", "golang.org/x/text/language.Parse", "main.main"),
		synthetic("imported", "v0.3.6", "main.main"),
		synthetic("fixed", "v0.3.7", "golang.org/x/text/language.Parse"),
	}
	db := &recordingDB{entries: []*osv.Entry{textEntry}}
	a, err := analysis.Run(context.Background(), db, bins, &analysis.Options{Match: &match.Options{SkipSites: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(db.asked) != 1 || !slices.Equal(db.asked[0], match.ModulePaths(bins...)) {
		t.Errorf("asked the database for %q, want once for %q", db.asked, match.ModulePaths(bins...))
	}
	if len(a.Results) != len(bins) || len(a.Binaries) != len(bins) {
		t.Fatalf("%d results and %d report binaries, want %d each", len(a.Results), len(a.Binaries), len(bins))
	}
	tests := []struct {
		status  report.Status // "" for no finding
		watches int
	}{
		{report.Linked, 1},
		{report.Imported, 0},
		{"", 0},
	}
	watches := 0
	for i, tt := range tests {
		res, rb := a.Results[i], a.Binaries[i]
		if res.Binary != bins[i] || rb.Path != bins[i].Path {
			t.Errorf("result %d is for %s (report %s), want %s", i, res.Binary.Path, rb.Path, bins[i].Path)
		}
		var got report.Status
		if len(rb.Findings) == 1 {
			got = rb.Findings[0].Status
		} else if len(rb.Findings) > 1 {
			t.Errorf("%s: %d findings, want at most 1", rb.Path, len(rb.Findings))
		}
		if got != tt.status {
			t.Errorf("%s: finding status %q, want %q", rb.Path, got, tt.status)
		}
		for _, f := range res.Findings {
			for _, sym := range f.Symbols {
				w, ok := a.Refs[sym]
				if !ok || w.Binary != rb {
					t.Errorf("%s: symbol %s.%s has no watch in its report binary", rb.Path, sym.Package, sym.Name)
				}
				watches++
			}
		}
		watches -= tt.watches
	}
	if watches != 0 || len(a.Refs) != 1 {
		t.Errorf("%d watches, want 1", len(a.Refs))
	}
}

func TestRunEntriesError(t *testing.T) {
	errDB := errors.New("database unreadable")
	_, err := analysis.Run(context.Background(), &recordingDB{err: errDB}, []*binfo.Binary{synthetic("app", "v0.3.5")}, nil)
	if !errors.Is(err, errDB) {
		t.Errorf("err = %v, want %v", err, errDB)
	}
}

func TestEntriesFunc(t *testing.T) {
	var got []string
	f := analysis.EntriesFunc(func(_ context.Context, paths []string) ([]*osv.Entry, error) {
		got = paths
		return []*osv.Entry{textEntry}, nil
	})
	entries, err := f.ByModules(context.Background(), []string{"golang.org/x/text"})
	if err != nil || len(entries) != 1 || !slices.Equal(got, []string{"golang.org/x/text"}) {
		t.Errorf("ByModules = %v, %v; called with %q", entries, err, got)
	}
}
