package match

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/testprog"
)

// allEntries reads every entry of the database at $REACH_TEST_VULNDB.
func allEntries(tb testing.TB) []*osv.Entry {
	tb.Helper()
	dir := testprog.RealDB(tb)
	files, err := filepath.Glob(filepath.Join(dir, "ID", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no entries in %s/ID: %v", dir, err)
	}
	entries := make([]*osv.Entry, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var e osv.Entry
		if err := json.Unmarshal(data, &e); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		entries = append(entries, &e)
	}
	return entries
}

// BenchmarkMatchAll matches the textyaml fixture built with go1.21.0 (old
// stdlib and dependencies: many findings) against every entry of the
// database, index and sites included.
func BenchmarkMatchAll(b *testing.B) {
	entries := allEntries(b)
	exe := testprog.Build(b, testprog.Dir(b, "textyaml"), testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"})
	bin, err := binfo.Open(exe)
	if err != nil {
		b.Fatal(err)
	}
	defer bin.Close()
	inlines := 0
	for _, f := range bin.Funcs {
		inlines += len(f.Inlines)
	}
	b.ResetTimer()
	var res *Result
	for i := 0; i < b.N; i++ {
		res, err = Match(context.Background(), bin, entries, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(bin.Funcs)), "funcs")
	b.ReportMetric(float64(inlines), "inlines")
	b.ReportMetric(float64(len(entries)), "entries")
	b.ReportMetric(float64(len(res.Findings)), "findings")
	b.ReportMetric(float64(countLinked(res)), "linked")
}
