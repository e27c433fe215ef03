package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// TestMergeReportConcurrent has many processes' worth of runs merge their
// reports into one file at once, as go test -exec 'reach run -merge' does
// with -p: every binary must end up in the file, each once.
func TestMergeReportConcurrent(t *testing.T) {
	name := filepath.Join(t.TempDir(), "report.json")
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r := &report.Report{
				Schema: report.Schema, Mode: "run", Started: time.Now(), Finished: time.Now(),
				Binaries: []*report.Binary{{Path: fmt.Sprintf("/tmp/go-build1/b%03d/p%d.test", i, i), TestOf: fmt.Sprintf("example.com/p%02d", i), Findings: []*report.Finding{}}},
			}
			if _, err := mergeReport(name, r); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := readReport(t, name)
	var names []string
	for _, b := range got.Binaries {
		names = append(names, b.TestOf)
	}
	if len(names) != n || !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != n {
		t.Errorf("merged binaries %q, want the %d runs' each once, sorted", names, n)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(name), ".reach-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestMergeReportNotAReport refuses to merge into a file that is not a
// reach JSON report, and leaves it alone.
func TestMergeReportNotAReport(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(name, []byte("my notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := mergeReport(name, &report.Report{Schema: report.Schema})
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "merge into a JSON report") {
		t.Errorf("error %v, want one naming %s and what to do", err, name)
	}
	if b, _ := os.ReadFile(name); string(b) != "my notes\n" {
		t.Errorf("file now %q, want it untouched", b)
	}
}

// TestMergeNeedsJSONFile checks that run -merge asks for -o and -format
// json before running anything.
func TestMergeNeedsJSONFile(t *testing.T) {
	for _, args := range [][]string{
		{"run", "-merge", "--", "/bin/true"},
		{"run", "-merge", "-o", filepath.Join(t.TempDir(), "r.txt"), "--", "/bin/true"},
	} {
		_, stderr, code := reach(t, args...)
		if code != 2 || !strings.Contains(stderr, "-merge: give -o FILE and -format json") {
			t.Errorf("reach %q: exit %d, stderr %q; want 2 and what to give", args, code, stderr)
		}
	}
}

// TestGoTestCacheNote checks when reach run notes that go test may have
// reused cached results.
func TestGoTestCacheNote(t *testing.T) {
	for _, tc := range []struct {
		argv    string
		goflags string
		note    bool
	}{
		{"go test ./...", "", true},
		{"/usr/local/go/bin/go test -v ./...", "", true},
		{"go test -count=1 ./...", "", false},
		{"go test -count 1 ./...", "", false},
		{"go test --count=2 ./...", "", false},
		{"go test ./...", "-mod=mod -count=1", false},
		{"go test ./... -args -count=1", "", true}, // the test binaries' flag
		{"go vet ./...", "", false},
		{"go", "", false},
		{"./go.test -test.v", "", false},
		{"gotest ./...", "", false},
	} {
		got := goTestCacheNote(strings.Fields(tc.argv), tc.goflags) != ""
		if got != tc.note {
			t.Errorf("%q with GOFLAGS=%q: note %v, want %v", tc.argv, tc.goflags, got, tc.note)
		}
	}
}
