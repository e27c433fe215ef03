// Package oracle checks reach's runtime observations against an
// independent oracle, Go's coverage, on real programs and real projects'
// test suites.
//
// For each Case it builds the program twice from the same source: plain,
// and with coverage of every package that holds vulnerable code
// (-cover -covermode=atomic -coverpkg=...). Which code is vulnerable comes
// from the database and the packages go list says the binary has, not from
// reach. It then runs the plain binary bare, under `reach run` and under
// `reach run -count`, and the coverage binary the same three ways, and
// compares per binary:
//
//   - the vulnerable symbols reach reports reached with those whose
//     function coverage saw entered (a whole package: any of its functions
//     but init; a module-level entry: any function of the module's
//     packages but init);
//   - in -count mode, each symbol's hits with coverage's count of calls,
//     unless the report marks the count as a lower bound (then hits must
//     not exceed the calls); in one-shot mode, hits must not exceed the
//     calls;
//   - the program's results (exit code, each test's PASS/FAIL/SKIP) with
//     its bare run's.
//
// The coverage binary's counters come from the very run reach watched, so
// its comparisons hold for any program. But the counters change what the
// compiler inlines (Result.Inlined counts the inlined copies of the
// vulnerable packages' functions in each binary, and they differ), so the plain binary, the one users run, is checked too,
// against the bare coverage run: valid where the program is
// deterministic. Symbols whose coverage differs between the three
// coverage runs are reported as unstable and left out of those
// cross-run comparisons.
//
// Two things coverage cannot see are set apart rather than counted as
// disagreements: code in packages that cannot be built with coverage (the
// runtime, internal packages: Result.Uncovered), and calls the coverage
// runtime makes after it has written its counters (os.ReadDir of the
// counter directory, for one: Run.CoverageOwn, recognised by the stack of
// reach's first hit).
package oracle

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/covdata"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/vulndb"
)

// Config is what every case needs.
type Config struct {
	Reach string // the reach binary
	DB    string // the vulnerability database directory
	Work  string // a directory for modules, binaries, reports and counters
	Log   *slog.Logger
}

// Result is the comparison of one case.
type Result struct {
	Case      Case
	GoVersion string
	// Vulnerable counts the vulnerable symbols, packages and modules the
	// binary's packages hold, and Uncovered lists those in packages that
	// cannot be built with coverage (the runtime and internal packages),
	// left out of every comparison.
	Vulnerable int
	Uncovered  []Key
	// Unstable lists the keys whose coverage differed between the runs of
	// the coverage binary: left out of the plain binary's comparisons.
	Unstable []Key
	// Inlined counts the copies of functions of vulnerable packages
	// inlined into other functions, in the plain and the coverage binary.
	Inlined [2]int
	Runs    []*Run
}

// Run is the comparison of one run under reach with coverage.
type Run struct {
	Binary  string // "plain" or "cover"
	Count   bool   // reach run -count
	SameRun bool   // coverage read from the run reach watched
	// Covered and Reached count the keys coverage saw run and those reach
	// reported reached; Agree those both did.
	Covered, Reached, Agree int
	Missed                  []Mismatch // ran, not reported reached
	False                   []Mismatch // reported reached, did not run
	// CoverageOwn lists keys reported reached, with no calls counted, whose
	// first hit came from the coverage runtime (it reads and writes the
	// counter files after taking its snapshot of the counters): no
	// disagreement, left out of Reached.
	CoverageOwn []Mismatch
	// Count mode: symbols whose hits equal the calls, are marked as a
	// lower bound and do not exceed them, or are wrong. One-shot mode:
	// symbols with more hits than calls are wrong.
	Exact, LowerBound int
	WrongCounts       []Mismatch
	// Modules is how many modules reach's report lists for the binary.
	Modules int
	// TestsDiff says how the program's results differed from its bare
	// run's; "" when identical.
	TestsDiff string
}

// Mismatch is one key on which reach and coverage disagree.
type Mismatch struct {
	Key    Key
	OSV    []string
	Calls  uint64 // coverage's call count (symbols), or 1/0 for ran
	Status string // reach's status; "" when the report does not list it
	Hits   uint64
	Lower  bool
}

func (m Mismatch) String() string {
	st := cmp.Or(m.Status, "absent")
	s := fmt.Sprintf("%s %v: coverage %d, reach %s", m.Key, m.OSV, m.Calls, st)
	if m.Hits > 0 {
		s += fmt.Sprintf(" %d hits", m.Hits)
		if m.Lower {
			s += " (lower bound)"
		}
	}
	return s
}

// OK is whether every run agreed with coverage and left the program's
// results as they were.
func (r *Result) OK() bool {
	for _, run := range r.Runs {
		if !run.OK() {
			return false
		}
	}
	return true
}

// OK is whether the run agreed with coverage.
func (r *Run) OK() bool {
	return len(r.Missed) == 0 && len(r.False) == 0 && len(r.WrongCounts) == 0 && r.TestsDiff == ""
}

// Check builds, runs and compares one case.
func Check(ctx context.Context, cfg Config, c Case) (*Result, error) {
	log := cmp.Or(cfg.Log, slog.New(slog.DiscardHandler)).With("case", c.Name)
	db, err := vulndb.New(cfg.DB, vulndb.Options{})
	if err != nil {
		return nil, err
	}
	w, err := prepare(ctx, cfg.Work, c)
	if err != nil {
		return nil, err
	}
	vuln, err := findVulnerable(ctx, db, w.pkgs, w.goVer)
	if err != nil {
		return nil, err
	}
	res := &Result{Case: c, GoVersion: w.goVer, Vulnerable: len(vuln.Keys)}
	byPath := make(map[string]*Package, len(w.pkgs))
	for _, p := range w.pkgs {
		byPath[p.ImportPath] = p
	}
	var coverPkgs []string
	covered := make(map[string]bool)
	for _, p := range vuln.packages() {
		if coverable(byPath[p]) {
			coverPkgs = append(coverPkgs, p)
			covered[p] = true
		}
	}
	for k := range vuln.Keys {
		if k.Package != "" && !slices.Contains(coverPkgs, k.Package) {
			res.Uncovered = append(res.Uncovered, k)
		}
	}
	slices.SortFunc(res.Uncovered, compareKeys)
	if len(coverPkgs) == 0 {
		return nil, fmt.Errorf("case %s: no vulnerable package that coverage can count (%d vulnerable keys)", c.Name, len(vuln.Keys))
	}
	if !c.Test && !slices.Contains(coverPkgs, w.mainPkg.ImportPath) {
		// A program writes its counters at exit only when its main
		// package is covered too.
		coverPkgs = append(coverPkgs, w.mainPkg.ImportPath)
	}

	dir := filepath.Join(cfg.Work, c.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bins := map[string]string{"plain": filepath.Join(dir, "plain"), "cover": filepath.Join(dir, "cover")}
	log.Info("build", "toolchain", w.goVer, "covered packages", len(coverPkgs))
	if err := w.build(ctx, bins["plain"], nil); err != nil {
		return nil, err
	}
	if err := w.build(ctx, bins["cover"], coverPkgs); err != nil {
		return nil, err
	}
	for i, b := range []string{bins["plain"], bins["cover"]} {
		if res.Inlined[i], err = inlinedCopies(b, coverPkgs); err != nil {
			return nil, err
		}
	}

	type runOut struct {
		outcome *Outcome
		obs     *Observation
		cov     *covdata.Coverage
	}
	do := func(name string, bin string, count, underReach, cover bool) (*runOut, error) {
		log.Info("run", "run", name)
		spec := runSpec{bin: bin}
		if cover {
			spec.covDir = filepath.Join(dir, name+".cov")
			if err := os.RemoveAll(spec.covDir); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(spec.covDir, 0o755); err != nil {
				return nil, err
			}
		}
		if underReach {
			spec.report = filepath.Join(dir, name+".json")
			spec.reach = []string{cfg.Reach, "run", "-db", cfg.DB, "-format", "json"}
			if count {
				spec.reach = append(spec.reach, "-count")
			}
		}
		out := &runOut{}
		if out.outcome, err = w.run(ctx, spec); err != nil {
			return nil, err
		}
		if underReach {
			if out.obs, err = readObservation(spec.report, bin); err != nil {
				return nil, err
			}
		}
		if cover {
			if out.cov, err = readCoverage(ctx, w.env, spec.covDir, w.pkgs); err != nil {
				return nil, err
			}
			// A package go list names but the linker left out has no
			// counters: its functions count no calls. None with counters
			// means the binary wrote none.
			if len(out.cov.Covered) == 0 {
				return nil, fmt.Errorf("case %s, run %s: no coverage counters in %s", c.Name, name, spec.covDir)
			}
		}
		return out, nil
	}
	plain, err := do("plain-bare", bins["plain"], false, false, false)
	if err != nil {
		return nil, err
	}
	cover, err := do("cover-bare", bins["cover"], false, false, true)
	if err != nil {
		return nil, err
	}
	covRuns := []*covdata.Coverage{cover.cov}
	var pending []func()
	for _, bin := range []string{"cover", "plain"} {
		for _, count := range []bool{false, true} {
			name := bin + "-oneshot"
			if count {
				name = bin + "-count"
			}
			out, err := do(name, bins[bin], count, true, bin == "cover")
			if err != nil {
				return nil, err
			}
			run := &Run{Binary: bin, Count: count, SameRun: bin == "cover", Modules: out.obs.Modules}
			base := plain.outcome
			cov := cover.cov
			if bin == "cover" {
				base, cov = cover.outcome, out.cov
				covRuns = append(covRuns, out.cov)
			}
			run.TestsDiff = out.outcome.Diff(base)
			res.Runs = append(res.Runs, run)
			obs := out.obs
			// Plain runs are compared once every coverage run is in, so
			// that unstable keys can be left out.
			pending = append(pending, func() { compare(run, vuln, covered, cov, obs, res.Unstable) })
		}
	}
	res.Unstable = unstable(vuln, covRuns)
	for _, f := range pending {
		f()
	}
	return res, nil
}

// ran returns coverage's call count for k (for a package or module: 1 when
// any of its functions other than init ran).
func ran(k Key, vuln *Vulnerable, cov *covdata.Coverage) uint64 {
	switch {
	case k.Package == "":
		for _, p := range vuln.Modules[k.Module] {
			if cov.Ran(p) {
				return 1
			}
		}
		return 0
	case k.Name == "":
		if cov.Ran(k.Package) {
			return 1
		}
		return 0
	}
	return cov.Calls[k.Package][k.Name]
}

// unstable lists the keys on which the coverage runs disagree.
func unstable(vuln *Vulnerable, runs []*covdata.Coverage) []Key {
	var out []Key
	for k := range vuln.Keys {
		for _, c := range runs[1:] {
			if ran(k, vuln, c) != ran(k, vuln, runs[0]) {
				out = append(out, k)
				break
			}
		}
	}
	slices.SortFunc(out, compareKeys)
	return out
}

// compare fills run with the comparison of reach's observation with
// coverage, leaving out the keys in skip (for a run whose coverage comes
// from another run) and those coverage could not count.
func compare(run *Run, vuln *Vulnerable, coverable map[string]bool, cov *covdata.Coverage, obs *Observation, skip []Key) {
	keys := make([]Key, 0, len(vuln.Keys))
	for k := range vuln.Keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		if k.Package != "" && !coverable[k.Package] {
			continue
		}
		if !run.SameRun && slices.Contains(skip, k) {
			continue
		}
		calls := ran(k, vuln, cov)
		m := Mismatch{Key: k, OSV: vuln.Keys[k], Calls: calls, Status: obs.Status[k], Hits: obs.Hits[k], Lower: obs.LowerBound[k]}
		covered, reached := calls > 0, obs.Reached(k)
		if reached && !covered && run.Binary == "cover" && fromCoverageRuntime(obs.Stacks[k]) {
			run.CoverageOwn = append(run.CoverageOwn, m)
			continue
		}
		if covered {
			run.Covered++
		}
		if reached {
			run.Reached++
		}
		switch {
		case covered && reached:
			run.Agree++
			if k.Name == "" {
				continue
			}
			switch {
			case !run.Count:
				// One-shot: the calls seen before the probes went, at
				// most all of them.
				if m.Hits > calls {
					run.WrongCounts = append(run.WrongCounts, m)
				}
			case m.Hits == calls:
				run.Exact++
			case m.Lower && m.Hits <= calls:
				run.LowerBound++
			default:
				run.WrongCounts = append(run.WrongCounts, m)
			}
		case covered:
			run.Missed = append(run.Missed, m)
		case reached:
			run.False = append(run.False, m)
		}
	}
}

// fromCoverageRuntime is whether a stack passes through the coverage
// runtime, whose calls happen after it snapshots the counters.
func fromCoverageRuntime(stack []string) bool {
	for _, fn := range stack {
		pkg := match.FuncPackage(fn)
		if strings.HasPrefix(pkg, "internal/coverage") || strings.HasPrefix(pkg, "runtime/coverage") {
			return true
		}
	}
	return false
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Module, b.Module), cmp.Compare(a.Package, b.Package), cmp.Compare(a.Name, b.Name))
}

// inlinedCopies counts the inlined copies of functions of pkgs in the
// binary at path.
func inlinedCopies(path string, pkgs []string) (int, error) {
	b, err := binfo.Open(path)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	n := 0
	for _, f := range b.Funcs {
		for _, in := range f.Inlines {
			if slices.Contains(pkgs, match.FuncPackage(in.Func)) {
				n++
			}
		}
	}
	return n, nil
}
