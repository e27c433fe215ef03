package observe

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// countingDB counts the analyses that ask for entries.
type countingDB struct {
	analysis.Entries
	calls atomic.Int32
}

func (c *countingDB) ByModules(ctx context.Context, modules []string) ([]*osv.Entry, error) {
	c.calls.Add(1)
	return c.Entries.ByModules(ctx, modules)
}

// TestPrograms checks that New analyses Options.Programs while it starts,
// that programs it cannot analyse do not fail it, and that Run then arms
// the program from that analysis, in time for package init.
func TestPrograms(t *testing.T) {
	testprog.RequireRoot(t)
	path := buildApp(t, testprog.Plain)
	db := &countingDB{Entries: fixtureDB(t)}
	// Through a symbolic link, as a PATH lookup may give.
	link := filepath.Join(t.TempDir(), "app-link")
	if err := exec.Command("ln", "-s", path, link).Run(); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, db, Options{
		Report:   report.Report{Mode: "run"},
		Follow:   true,
		Programs: []string{link, filepath.Join(t.TempDir(), "missing"), "/proc/self/status"},
	})
	if n := db.calls.Load(); n != 1 {
		t.Fatalf("New asked for entries %d times, want 1: the Go program analysed ahead", n)
	}
	s.mu.Lock()
	var paths []string
	for _, b := range s.bins {
		paths = append(paths, b.path)
	}
	s.mu.Unlock()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || !(paths[0] == real || paths[1] == real) {
		t.Errorf("analysed %q, want %s and the non-Go file", paths, real)
	}
	r := runApp(t, s, link, "all")
	if n := db.calls.Load(); n != 1 {
		t.Errorf("entries asked for %d times after Run, want 1: Run analysed the program again", n)
	}
	for _, name := range []string{"Direct", "InitCall"} {
		if sym := symbol(t, r, real, "GO-2099-0001", name); sym.Status != report.Reached {
			t.Errorf("%s: status %s, want reached", name, sym.Status)
		}
	}
}
