package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// The tests of this file run textyaml (x/text v0.3.5, yaml.v2 v2.2.2)
// under reach with -targets selecting part of its vulnerable symbols, and
// check each symbol's status against Go's coverage of the same run: a
// symbol reach watched all the time is reached exactly when coverage saw
// it run, and linked otherwise; a symbol it did not watch all the time is
// not_watched, never linked, whatever coverage says.

// coverTextYAML is textyaml built with coverage of its vulnerable
// packages.
var coverTextYAML = testprog.Variant{Name: "cover", CoverPkg: "example.com/textyaml,gopkg.in/yaml.v2,golang.org/x/text/language"}

// symKey is how coverage names a report symbol.
func symKey(s *report.Symbol) string { return s.Package + "." + s.Name }

// checkAgainstCoverage checks every symbol of b's findings: watched all
// the time (wholly(f, s)) means reached if coverage saw it run and linked
// if not; otherwise not_watched with a reason. Each finding's status is its
// most severe symbol's. It returns how many symbols that ran were not
// watched and how many were watched, so that callers can check the case
// was not empty.
func checkAgainstCoverage(t *testing.T, b *report.Binary, ran map[string]bool, wholly func(*report.Finding, *report.Symbol) bool) (ranUnwatched, watched int) {
	t.Helper()
	for _, f := range b.Findings {
		top := report.Status("")
		for _, s := range f.Symbols {
			if s.Status.Rank() > top.Rank() {
				top = s.Status
			}
			did, known := ran[symKey(s)]
			if !known && wholly(f, s) {
				t.Errorf("%s %s: not in the coverage data", f.OSV, symKey(s))
				continue
			}
			switch {
			case wholly(f, s) && did:
				watched++
				if s.Status != report.Reached {
					t.Errorf("%s %s: watched all the time and ran (coverage), status %s, want reached", f.OSV, symKey(s), s.Status)
				}
				if len(s.Watched) == 0 {
					t.Errorf("%s %s: reached with no watched period", f.OSV, symKey(s))
				}
			case wholly(f, s):
				watched++
				if s.Status != report.Linked || len(s.Unwatched) != 0 || len(s.Watched) == 0 {
					t.Errorf("%s %s: watched all the time and did not run (coverage): status %s, unwatched %q, watched %v; want linked, watched, no reason", f.OSV, symKey(s), s.Status, s.Unwatched, s.Watched)
				}
			default:
				if did {
					ranUnwatched++
				}
				if s.Status == report.Reached && !did {
					t.Errorf("%s %s: reached, but coverage says it did not run", f.OSV, symKey(s))
				}
				if s.Status != report.NotWatched && s.Status != report.Reached {
					t.Errorf("%s %s: not watched all the time (ran: %v), status %s, want not_watched", f.OSV, symKey(s), did, s.Status)
				}
				if len(s.Unwatched) == 0 {
					t.Errorf("%s %s: not watched all the time, and no reason given", f.OSV, symKey(s))
				}
			}
		}
		if len(f.Symbols) > 0 && f.Status != top {
			t.Errorf("%s: finding status %s, want its most severe symbol's %s", f.OSV, f.Status, top)
		}
	}
	return ranUnwatched, watched
}

// runCovered runs `reach run -format json ARGS -- BIN` for bin, a
// coverage build of textyaml with toolchain, and returns reach's report,
// bin's binary in it and the functions coverage saw run. reach must exit 0.
func runCovered(t *testing.T, toolchain, bin string, args ...string) (*report.Report, *report.Binary, map[string]bool) {
	t.Helper()
	dir := t.TempDir()
	cov := filepath.Join(dir, "cover")
	if err := os.Mkdir(cov, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.json")
	args = append(append([]string{"run", "-db", realDB(t), "-format", "json", "-o", out}, args...), "--", bin)
	cmd := exec.Command(reachBin(t), args...)
	cmd.Env = append(os.Environ(), "GOCOVERDIR="+cov)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("reach %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if stdout.String() != "en-US\n" {
		t.Errorf("program output %q, want en-US", stdout.String())
	}
	ran := testprog.CoveredFuncs(t, toolchain, testprog.Dir(t, "textyaml"), cov)
	r := readReport(t, out)
	return r, observedBinary(t, r, bin), ran
}

// writeTargets writes a targets file and returns its path.
func writeTargets(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunTargetsCoverage runs textyaml with -targets naming one OSV entry,
// an alias (CVE, GHSA), a function, a method and a package: the selected
// symbols are reached or linked as coverage says, and every other one
// (many of which ran) is not_watched with its reason, never linked. The
// report lists the selection with the file and line.
func TestRunTargetsCoverage(t *testing.T) {
	testprog.RequireRoot(t)
	realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), coverTextYAML)
	for _, tc := range []struct {
		name, selector string
		selects        func(f *report.Finding, s *report.Symbol) bool
	}{
		{"osv", "GO-2021-0113", func(f *report.Finding, _ *report.Symbol) bool { return f.OSV == "GO-2021-0113" }},
		{"cve", "CVE-2021-4235", func(f *report.Finding, _ *report.Symbol) bool { return f.OSV == "GO-2021-0061" }},
		{"ghsa", "GHSA-6q6q-88xp-6f2r", func(f *report.Finding, _ *report.Symbol) bool { return f.OSV == "GO-2022-0956" }},
		{"function", "gopkg.in/yaml.v2.yaml_parser_fetch_value", func(_ *report.Finding, s *report.Symbol) bool {
			return symKey(s) == "gopkg.in/yaml.v2.yaml_parser_fetch_value"
		}},
		{"method", "gopkg.in/yaml.v2.decoder.unmarshal", func(_ *report.Finding, s *report.Symbol) bool {
			return symKey(s) == "gopkg.in/yaml.v2.decoder.unmarshal"
		}},
		{"package", "golang.org/x/text/language", func(_ *report.Finding, s *report.Symbol) bool { return s.Package == "golang.org/x/text/language" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := writeTargets(t, filepath.Join(t.TempDir(), "targets"), "# one target\n"+tc.selector+"\n")
			r, b, ran := runCovered(t, coverTextYAML.Toolchain, bin, "-targets", tf)
			unwatchedRan, watched := checkAgainstCoverage(t, b, ran, tc.selects)
			if watched == 0 {
				t.Errorf("%s selected no symbol of the report", tc.selector)
			}
			if unwatchedRan == 0 {
				t.Errorf("no symbol that ran was left unwatched: the case checks nothing")
			}
			want := []report.Selector{{Selector: tc.selector, Line: 2}}
			if len(r.Targets) != 1 || r.Targets[0].File != tf || !slices.Equal(r.Targets[0].Selectors, want) {
				t.Errorf("targets %+v, want one selection of %s: %+v", r.Targets, tf, want)
			}
			for _, n := range r.Notes {
				if strings.Contains(n, "watches nothing") {
					t.Errorf("a note says a matching target watches nothing: %s", n)
				}
			}
		})
	}
}

// TestRunTargetsVariants runs textyaml built stripped and PIE, with
// aggressive inlining, and with Go 1.21.0 (whose standard library adds
// findings of its own), with -targets naming GO-2021-0113: Parse is reached
// as coverage says, and every other symbol is not_watched.
func TestRunTargetsVariants(t *testing.T) {
	testprog.RequireRoot(t)
	realDB(t)
	for _, v := range []testprog.Variant{
		{Name: "cover-stripped-pie", Stripped: true, PIE: true, CoverPkg: coverTextYAML.CoverPkg},
		{Name: "cover-inlined", GCFlags: "-l=4", CoverPkg: coverTextYAML.CoverPkg},
		{Name: "cover-go1.21.0", Toolchain: "go1.21.0", CoverPkg: coverTextYAML.CoverPkg},
	} {
		t.Run(v.Name, func(t *testing.T) {
			bin := testprog.Build(t, testprog.Dir(t, "textyaml"), v)
			tf := writeTargets(t, filepath.Join(t.TempDir(), "targets"), "GO-2021-0113\n")
			_, b, ran := runCovered(t, v.Toolchain, bin, "-targets", tf)
			if b.Stripped != v.Stripped || b.PIE != v.PIE {
				t.Errorf("stripped %v PIE %v, want %v %v", b.Stripped, b.PIE, v.Stripped, v.PIE)
			}
			unwatchedRan, watched := checkAgainstCoverage(t, b, ran, func(f *report.Finding, _ *report.Symbol) bool { return f.OSV == "GO-2021-0113" })
			if watched == 0 || unwatchedRan == 0 {
				t.Errorf("%d symbols watched, %d ran unwatched: want some of each", watched, unwatchedRan)
			}
			if _, s := observedSymbol(t, b, "GO-2021-0113", "golang.org/x/text/language", "Parse"); s.Status != report.Reached {
				t.Errorf("Parse: %s, want reached", s.Status)
			}
		})
	}
}

// TestRunTargetsMaxSites: when the targets need more probe sites than
// -max-sites, nothing is armed in the process, and every symbol, although
// several ran, is not_watched with the cap as the reason.
func TestRunTargetsMaxSites(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), coverTextYAML)
	// Nothing is reached: -fail-on reached passes.
	_, b, ran := runCovered(t, coverTextYAML.Toolchain, bin, "-max-sites", "1", "-fail-on", "reached")
	unwatchedRan, _ := checkAgainstCoverage(t, b, ran, func(*report.Finding, *report.Symbol) bool { return false })
	if unwatchedRan == 0 {
		t.Error("no symbol ran")
	}
	for _, f := range b.Findings {
		for _, s := range f.Symbols {
			if len(s.Unwatched) != 1 || !strings.Contains(s.Unwatched[0], "more than -max-sites 1") {
				t.Errorf("%s %s: reasons %q, want the -max-sites cap", f.OSV, symKey(s), s.Unwatched)
			}
		}
	}
	// not_watched ranks below reached and above linked.
	plain := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	for _, tc := range []struct {
		failOn string
		code   int
	}{{"reached", 0}, {"not_watched", ExitFound}, {"linked", ExitFound}} {
		res := runReach(t, "run", "-db", db, "-o", filepath.Join(t.TempDir(), "report.txt"), "-max-sites", "1", "-fail-on", tc.failOn, "--", plain)
		if res.code != tc.code {
			t.Errorf("-fail-on %s: exit %d, want %d\n%s", tc.failOn, res.code, tc.code, res.stderr)
		}
	}
}

// TestRunTargetsLive changes the targets file while textyaml runs its
// steps: GO-2021-0113 (language.Parse) is watched first and yaml.Unmarshal
// runs unwatched; then the file selects yaml.Unmarshal instead (and names
// an ID the database does not have), Parse runs unwatched and Unmarshal
// watched. Parse, watched for part of the time and not seen, is
// not_watched with its watched period; Unmarshal is reached after the
// change; the report has both selections, and the unknown ID is warned
// about with its file:line.
func TestRunTargetsLive(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), coverTextYAML)
	dir := t.TempDir()
	tf := writeTargets(t, filepath.Join(dir, "targets"), "GO-2021-0113\n")
	cov := filepath.Join(dir, "cover")
	if err := os.Mkdir(cov, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.json")
	cmd := exec.Command(reachBin(t), "run", "-v", "-db", db, "-format", "json", "-o", out, "-targets", tf, "--", bin, "steps")
	cmd.Env = append(os.Environ(), "GOCOVERDIR="+cov)
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderrW
	in, stdout := testprog.StartPiped(t, cmd)
	stderrW.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// Count the target changes reach applies, keeping its standard error.
	var (
		mu      sync.Mutex
		errText strings.Builder
		changes = make(chan struct{}, 8)
	)
	go func() {
		sc := bufio.NewScanner(stderrR)
		for sc.Scan() {
			mu.Lock()
			errText.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), `msg="targets changed"`) {
				changes <- struct{}{}
			}
		}
	}()
	stderrText := func() string {
		mu.Lock()
		defer mu.Unlock()
		return errText.String()
	}
	waitChange := func() {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(10 * time.Second):
			t.Fatalf("reach applied no target change within 10s\n%s", stderrText())
		}
	}
	lines := bufio.NewReader(stdout)
	step := func(cmd string) {
		t.Helper()
		if cmd != "" {
			fmt.Fprintln(in, cmd)
		}
		want := "ok"
		if cmd == "" {
			want = "ready"
		}
		if l := readLine(t, lines, 10*time.Second); l != want {
			t.Fatalf("program said %q after %q, want %q", l, cmd, want)
		}
	}

	waitChange() // the file's first reading
	step("")
	step("yaml") // not watched
	writeTargets(t, tf, "gopkg.in/yaml.v2.Unmarshal\nGO-2099-9999\n")
	waitChange()
	changed := time.Now()
	// The warning comes while the program runs.
	warn := fmt.Sprintf(`%s:2: \"GO-2099-9999\": no entry of the vulnerability database has this ID or alias`, tf)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderrText(), warn); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("standard error lacks the warning %q:\n%s", warn, stderrText())
		}
	}
	step("text") // no longer watched
	step("yaml") // watched now
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reach run: %v\n%s", err, stderrText())
	}

	ran := testprog.CoveredFuncs(t, coverTextYAML.Toolchain, testprog.Dir(t, "textyaml"), cov)
	r := readReport(t, out)
	b := observedBinary(t, r, bin)
	for _, k := range []string{"golang.org/x/text/language.Parse", "gopkg.in/yaml.v2.Unmarshal", "gopkg.in/yaml.v2.decoder.unmarshal"} {
		if !ran[k] {
			t.Errorf("coverage says %s did not run", k)
		}
	}
	// Nothing was watched all the time: every symbol is not_watched or
	// reached (and then ran).
	checkAgainstCoverage(t, b, ran, func(*report.Finding, *report.Symbol) bool { return false })

	_, parse := observedSymbol(t, b, "GO-2021-0113", "golang.org/x/text/language", "Parse")
	if parse.Status != report.NotWatched || len(parse.Watched) != 1 || parse.Watched[0].Until == nil ||
		parse.Watched[0].Until.After(changed) || !slices.Contains(parse.Unwatched, "not selected by the targets in force") {
		t.Errorf("Parse: status %s, watched %+v, unwatched %q; want not_watched, watched once until the change (before %s), not selected", parse.Status, parse.Watched, parse.Unwatched, changed)
	}
	for _, id := range []string{"GO-2020-0036", "GO-2021-0061", "GO-2022-0956"} {
		f, s := observedSymbol(t, b, id, "gopkg.in/yaml.v2", "Unmarshal")
		if s.Status != report.Reached || f.Status != report.Reached || s.FirstSeen == nil || s.FirstSeen.Before(*parse.Watched[0].Until) {
			t.Errorf("%s Unmarshal: %s (finding %s), first seen %v; want reached after the change at %v", id, s.Status, f.Status, s.FirstSeen, parse.Watched[0].Until)
		}
		if len(s.Watched) != 1 || s.Watched[0].From.Before(*parse.Watched[0].Until) {
			t.Errorf("%s Unmarshal: watched %+v, want from the change on", id, s.Watched)
		}
	}
	if _, s := observedSymbol(t, b, "GO-2021-0061", "gopkg.in/yaml.v2", "decoder.unmarshal"); s.Status != report.NotWatched || len(s.Watched) != 0 {
		t.Errorf("decoder.unmarshal, never selected: %s, watched %+v; want not_watched, never watched", s.Status, s.Watched)
	}

	if len(r.Targets) != 2 {
		t.Fatalf("targets %+v, want two selections", r.Targets)
	}
	second := r.Targets[1]
	want := []report.Selector{{Selector: "gopkg.in/yaml.v2.Unmarshal", Line: 1}, {Selector: "GO-2099-9999", Line: 2}}
	if second.File != tf || !slices.Equal(second.Selectors, want) || second.From.After(changed) || !second.From.After(r.Targets[0].From) {
		t.Errorf("second selection %+v, want %+v from %s at the change", second, want, tf)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, strings.ReplaceAll(warn, `\"`, `"`)) }) {
		t.Errorf("notes lack the unknown ID: %q", r.Notes)
	}
}

// TestRunTargetsUnmatched: each target line that selects nothing is
// warned about on standard error and noted in the report with its
// file:line, telling an ID or symbol the database does not know from one
// that is not in the program; a line that selects something is not.
func TestRunTargetsUnmatched(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	dir := t.TempDir()
	tf := writeTargets(t, filepath.Join(dir, "targets"), strings.Join([]string{
		"GO-2021-0113",                    // 1: selects Parse
		"GO-2099-9999",                    // 2: unknown ID
		"CVE-2099-0001",                   // 3: unknown alias
		"GO-2022-1059 # imported",         // 4: affects x/text v0.3.5, symbols not linked
		"GO-2020-0001",                    // 5: another module
		"example.com/nothere.Foo",         // 6: unknown package
		"golang.org/x/text/language.Nope", // 7: unknown symbol of a known package
		"golang.org/x/net/html.Parse",     // 8: known symbol, not in the program
		"",
	}, "\n"))
	out := filepath.Join(dir, "report.txt")
	res := runReach(t, "run", "-db", db, "-o", out, "-targets", tf, "--", bin)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(text)), " ") // the text report wraps notes
	for _, tc := range []struct {
		line int
		sel  string
		want string
	}{
		{2, "GO-2099-9999", "no entry of the vulnerability database has this ID or alias"},
		{3, "CVE-2099-0001", "no entry of the vulnerability database has this ID or alias"},
		{4, "GO-2022-1059", "the entry affects a module version of the programs observed, but none of its vulnerable symbols is in them"},
		{5, "GO-2020-0001", "the entry is in the vulnerability database, but does not affect the programs observed"},
		{6, "example.com/nothere.Foo", "no entry of the vulnerability database names this package or symbol"},
		{7, "golang.org/x/text/language.Nope", "no entry of the vulnerability database names this package or symbol"},
		{8, "golang.org/x/net/html.Parse", "the vulnerability database names it vulnerable, but it is not in the programs observed"},
	} {
		msg := fmt.Sprintf("targets file %s:%d: %q: %s", tf, tc.line, tc.sel, tc.want)
		if !strings.Contains(flat, msg) {
			t.Errorf("report lacks %q", msg)
		}
		// A warning in plain words, one line (a log record only with -v).
		logged := "reach: warning: target selects nothing so far: " + msg
		if !strings.Contains(res.stderr, logged) {
			t.Errorf("standard error lacks %q", logged)
		}
	}
	if strings.Contains(flat, fmt.Sprintf("%s:1:", tf)) {
		t.Errorf("line 1 selects Parse, yet the report mentions it:\n%s", text)
	}
}
