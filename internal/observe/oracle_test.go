package observe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reach-sca/reach/internal/covdata"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

// The standard library packages whose vulnerable symbols the count tests
// check against Go's coverage.
const coveredStd = "net/http,net/textproto,net/url"

// countRun is a fixture program run once under reach -count with Go's
// coverage on: reach's report and coverage's counts of the same run.
type countRun struct {
	path string
	r    *report.Report
	cov  *covdata.Coverage
	s    *Session // closed
	// events are the hits the session streamed (Options.OnHit).
	events []Event
}

// runCounted builds the program in testdata/progs/name as v with coverage
// of coveredStd and its main package, runs it under a session in mode
// with GOCOVERDIR set, and reads both counts.
func runCounted(t *testing.T, db *vulndb.Client, name string, v testprog.Variant, mode probe.Mode) countRun {
	t.Helper()
	dir := testprog.Dir(t, name)
	v.CoverPkg = coveredStd + ",example.com/" + name
	v.Name += "-cover"
	path := testprog.Build(t, dir, v)
	covDir := t.TempDir()
	var mu sync.Mutex
	var events []Event
	onHit := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	s := newSession(t, db, Options{Mode: mode, Report: report.Report{Mode: "run"}, OnHit: onHit})
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "GOCOVERDIR="+covDir)
	r := runCmd(t, s, cmd)
	mu.Lock()
	defer mu.Unlock()
	return countRun{path: path, r: r, cov: testprog.ReadCoverage(t, v.Toolchain, dir, covDir), s: s, events: slices.Clone(events)}
}

// checkStream checks the hits streamed in run against its report: one
// "first" event per symbol and process, then one "callsite" event per
// further callsite, each callsite streamed one of the symbol's callsites
// in the report (a closure's or wrapper's hit is no call from a callsite).
func checkStream(t *testing.T, run countRun) {
	t.Helper()
	type key struct {
		pid           int
		osv, pkg, sym string
	}
	firsts := map[key]int{}
	sites := map[key]map[report.Frame]int{}
	for _, e := range run.events {
		k := key{e.PID, e.OSV, e.Package, e.Symbol}
		switch e.Kind {
		case "first":
			firsts[k]++
		case "callsite":
			if firsts[k] == 0 {
				t.Errorf("%s.%s (%s): a callsite event before the first", e.Package, e.Symbol, e.OSV)
			}
		default:
			t.Errorf("%s.%s (%s): event kind %q", e.Package, e.Symbol, e.OSV, e.Kind)
		}
		if e.Callsite == nil || e.Lost {
			continue
		}
		if sites[k] == nil {
			sites[k] = map[report.Frame]int{}
		}
		sites[k][*e.Callsite]++
		var sym *report.Symbol
		for _, f := range binaryOf(t, run.r, run.path).Findings {
			for _, s := range f.Symbols {
				if f.OSV == e.OSV && s.Package == e.Package && s.Name == e.Symbol {
					sym = s
				}
			}
		}
		if sym == nil || !slices.ContainsFunc(sym.Callsites, func(c *report.Callsite) bool {
			return c.Function == e.Callsite.Function && c.File == e.Callsite.File && c.Line == e.Callsite.Line
		}) {
			t.Errorf("%s.%s (%s): streamed from %+v, not one of its callsites in the report", e.Package, e.Symbol, e.OSV, *e.Callsite)
		}
	}
	for k, n := range firsts {
		if n != 1 {
			t.Errorf("%s.%s (%s): %d first events in process %d, want 1", k.pkg, k.sym, k.osv, n, k.pid)
		}
	}
	for k, m := range sites {
		for f, n := range m {
			if n != 1 {
				t.Errorf("%s.%s (%s): callsite %+v streamed %d times, want once", k.pkg, k.sym, k.osv, f, n)
			}
		}
	}
	if len(run.events) == 0 {
		t.Error("no hit streamed")
	}
}

// checkCounts checks every vulnerable symbol of the binary in a covered
// package against coverage: reached if and only if coverage saw it run,
// and in count mode its hits equal the calls coverage counted, or are at
// most that when the report says they are a lower bound (in one-shot mode,
// where hits count the calls before the probes went, always at most that);
// in count mode its callsites' hits add up to its hits. It returns how
// many symbols it checked.
func checkCounts(t *testing.T, run countRun, mode probe.Mode) int {
	t.Helper()
	covered := map[string]bool{}
	for _, p := range strings.Split(coveredStd, ",") {
		covered[p] = true
	}
	checked := 0
	seen := map[string]bool{}
	for _, f := range binaryOf(t, run.r, run.path).Findings {
		for _, s := range f.Symbols {
			name := s.Package + "." + s.Name
			if !covered[s.Package] || s.Name == "" || seen[name] {
				continue
			}
			seen[name] = true
			calls, ok := run.cov.Calls[s.Package][s.Name]
			if !ok {
				t.Errorf("%s: not in the coverage profile (%s)", name, run.cov)
				continue
			}
			checked++
			if (s.Status == report.Reached) != (calls > 0) {
				t.Errorf("%s: %s with %d hits, but coverage counted %d calls", name, s.Status, s.Hits, calls)
				continue
			}
			switch {
			case (s.HitsLowerBound || mode == probe.OneShot) && s.Hits > calls:
				t.Errorf("%s: at least %d hits, but coverage counted %d calls", name, s.Hits, calls)
			case !s.HitsLowerBound && mode == probe.Count && s.Hits != calls:
				t.Errorf("%s: %d hits, but coverage counted %d calls", name, s.Hits, calls)
			}
			var sum uint64
			for _, c := range s.Callsites {
				sum += c.Hits
			}
			if mode == probe.Count && sum != s.Hits {
				t.Errorf("%s: callsite hits add up to %d, hits %d: %+v", name, sum, s.Hits, deref(s.Callsites))
			}
		}
	}
	return checked
}

// TestCountHTTPOracle runs an HTTP server and client (go1.21.0, whose
// net/http has many vulnerable symbols, with closures, defer wrappers and
// a goroutine per connection inside them) under reach -count with Go's
// coverage, and checks every vulnerable symbol's count against
// coverage's: closures are not calls.
func TestCountHTTPOracle(t *testing.T) {
	db := realDB(t)
	testprog.RequireRoot(t)
	old := testprog.Variant{Toolchain: "go1.21.0"}
	for _, v := range []testprog.Variant{
		{Name: "go1.21.0", Toolchain: old.Toolchain},
		{Name: "go1.21.0-pie", Toolchain: old.Toolchain, PIE: true},
		{Name: "go1.21.0-stripped", Toolchain: old.Toolchain, Stripped: true},
	} {
		t.Run(v.Name, func(t *testing.T) {
			run := runCounted(t, db, "httpcount", v, probe.Count)
			n := checkCounts(t, run, probe.Count)
			checkStream(t, run)
			// The symbols the issue saw counted twice or more.
			for _, name := range []string{"body.Read", "bodyEOFSignal.Read", "bodyEOFSignal.Close", "Server.Serve"} {
				s := symbol(t, run.r, run.path, "GO-2024-2687", name)
				calls, _ := run.cov.Calls["net/http"][name]
				t.Logf("%s: %d hits, coverage %d calls", name, s.Hits, calls)
				if s.Status != report.Reached {
					t.Errorf("%s: %s, want reached", name, s.Status)
				}
			}
			t.Logf("%d symbols checked against coverage", n)
			if n < 20 {
				t.Errorf("only %d symbols checked: want the run to reach many of net/http's", n)
			}
		})
	}
	// One-shot: the same symbols reached, none with more hits than calls.
	t.Run("go1.21.0-oneshot", func(t *testing.T) {
		run := runCounted(t, db, "httpcount", testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"}, probe.OneShot)
		if n := checkCounts(t, run, probe.OneShot); n < 20 {
			t.Errorf("only %d symbols checked: want the run to reach many of net/http's", n)
		}
	})
}

// TestCountCallsiteOracle: calls that pass the same immediate caller
// (net/http.readRequest) from different application lines are counted
// per line: main.once's line once, main.five's line five times, as
// coverage counts those lines, for every symbol ReadRequest reaches.
func TestCountCallsiteOracle(t *testing.T) {
	db := realDB(t)
	testprog.RequireRoot(t)
	dir := testprog.Dir(t, "readreq")
	file := filepath.Join(dir, "main.go")
	lines := markerLines(t, file)
	for _, v := range []testprog.Variant{
		{Name: "go1.21.0", Toolchain: "go1.21.0"},
		{Name: "go1.21.0-pie", Toolchain: "go1.21.0", PIE: true},
		{Name: "go1.21.0-stripped", Toolchain: "go1.21.0", Stripped: true},
	} {
		t.Run(v.Name, func(t *testing.T) {
			run := runCounted(t, db, "readreq", v, probe.Count)
			checked := checkCounts(t, run, probe.Count)
			once, _ := run.cov.Line(file, lines["once"])
			five, _ := run.cov.Line(file, lines["five"])
			if once != 1 || five != 5 {
				t.Fatalf("coverage ran the lines %d and %d times, want 1 and 5", once, five)
			}
			reached := 0
			for _, f := range binaryOf(t, run.r, run.path).Findings {
				for _, s := range f.Symbols {
					if s.Status != report.Reached {
						continue
					}
					reached++
					// Every reached symbol runs the same number of times
					// per ReadRequest call.
					per := s.Hits / (once + five)
					want := []report.Callsite{
						{Function: "main.once", File: file, Line: lines["once"], Hits: per * once},
						{Function: "main.five", File: file, Line: lines["five"], Hits: per * five},
					}
					if len(s.Callsites) != 2 || *s.Callsites[0] != want[0] || *s.Callsites[1] != want[1] {
						t.Errorf("%s %s.%s: %d hits from %v, want %v", f.OSV, s.Package, s.Name, s.Hits, deref(s.Callsites), want)
					}
				}
			}
			// ReadRequest's callers are main's: those calls are counted by
			// return address, without reading the stack
			// (probe.Engine.KeyByReturn); ReadMIMEHeader's is not.
			byReturn := 0
			run.s.mu.Lock()
			for k := range run.s.callsites {
				if k.key>>63 == 0 {
					byReturn++
				}
			}
			run.s.mu.Unlock()
			if byReturn == 0 {
				t.Error("no callsite counted by return address")
			}
			t.Logf("%d symbols checked against coverage, %d reached", checked, reached)
			if reached < 3 {
				t.Errorf("%d symbols reached, want ReadRequest, ReadMIMEHeader and more", reached)
			}

			// The same program built without coverage, as users run it,
			// gets the same counts: the program does the same each run.
			if v.PIE || v.Stripped {
				return // one build is enough
			}
			path := testprog.Build(t, dir, v)
			s := newSession(t, db, Options{Mode: probe.Count, Report: report.Report{Mode: "run"}})
			r := runApp(t, s, path)
			for _, f := range binaryOf(t, run.r, run.path).Findings {
				for _, sc := range f.Symbols {
					sp := symbol(t, r, path, f.OSV, sc.Name)
					if sp.Status != sc.Status || sp.Hits != sc.Hits || fmt.Sprint(deref(sp.Callsites)) != fmt.Sprint(deref(sc.Callsites)) {
						t.Errorf("%s %s.%s without coverage: %s, %d hits from %v; with coverage %s, %d from %v", f.OSV, sc.Package, sc.Name,
							sp.Status, sp.Hits, deref(sp.Callsites), sc.Status, sc.Hits, deref(sc.Callsites))
					}
				}
			}
		})
	}
}

func deref(cs []*report.Callsite) []report.Callsite {
	var out []report.Callsite
	for _, c := range cs {
		out = append(out, *c)
	}
	return out
}

func realDB(t *testing.T) *vulndb.Client {
	t.Helper()
	db, err := vulndb.New(testprog.RealDB(t), vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
