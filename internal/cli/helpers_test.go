package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// result is how a reach process ended.
type result struct {
	stdout, stderr string
	code           int // exit code; -1 when a signal ended reach itself
}

const (
	textOSV = "GO-2021-0113"
	textPkg = "golang.org/x/text/language"
)

// reachBin returns the path of the reach binary, built from cmd/reach once
// per test process.
func reachBin(t *testing.T) string {
	t.Helper()
	return testprog.Reach(t)
}

// runReach runs the reach binary with args to completion.
func runReach(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(reachBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("reach %s: %v", strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// readReport decodes the JSON report reach wrote to path.
func readReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report not written: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode report %s: %v\n%s", path, err, b)
	}
	return &r
}

// observedBinary returns the report's binary at path, failing the test
// when there is none.
func observedBinary(t *testing.T, r *report.Report, path string) *report.Binary {
	t.Helper()
	for _, b := range r.Binaries {
		if b.Path == path {
			return b
		}
	}
	var paths []string
	for _, b := range r.Binaries {
		paths = append(paths, b.Path)
	}
	t.Fatalf("binary %s not in the report; binaries: %v; notes: %q", path, paths, r.Notes)
	return nil
}

// observedSymbol returns symbol pkg.name of finding id in binary b.
func observedSymbol(t *testing.T, b *report.Binary, id, pkg, name string) (*report.Finding, *report.Symbol) {
	t.Helper()
	f := findFinding(b, id)
	if f == nil {
		t.Fatalf("%s not reported for %s; findings: %v", id, b.Path, ids(b))
	}
	s := findSymbol(f, pkg, name)
	if s == nil {
		t.Fatalf("%s: symbol %s.%s missing: %+v", id, pkg, name, f.Symbols)
	}
	return f, s
}

// sourceLine returns the line of file holding needle, which must occur on
// exactly one line.
func sourceLine(t *testing.T, file, needle string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, needle) {
			if line != 0 {
				t.Fatalf("%s: %q on lines %d and %d, want one", file, needle, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%s: %q not found", file, needle)
	}
	return line
}

// wantReached checks that sym was reached hits times (0: any number; the
// tests of exact counts use -count) with the single callsite fn at
// file:line.
func wantReached(t *testing.T, sym *report.Symbol, fn, file string, line int, hits uint64) {
	t.Helper()
	if sym.Status != report.Reached {
		t.Fatalf("%s.%s: status %s, want reached", sym.Package, sym.Name, sym.Status)
	}
	if hits != 0 && sym.Hits != hits {
		js, _ := json.MarshalIndent(sym, "\t", "  ")
		t.Errorf("%s.%s: %d hits, want %d:\n\t%s", sym.Package, sym.Name, sym.Hits, hits, js)
	}
	if sym.Hits == 0 || sym.FirstSeen == nil || sym.LastSeen == nil {
		t.Errorf("%s.%s: hits %d, first seen %v, last seen %v: a reached symbol needs all three", sym.Package, sym.Name, sym.Hits, sym.FirstSeen, sym.LastSeen)
	}
	if len(sym.Callsites) != 1 {
		t.Fatalf("%s.%s: callsites %+v, want one: %s at %s:%d", sym.Package, sym.Name, sym.Callsites, fn, file, line)
	}
	c := sym.Callsites[0]
	if c.Function != fn || c.File != file || c.Line != line {
		t.Errorf("%s.%s: callsite %s at %s:%d, want %s at %s:%d", sym.Package, sym.Name, c.Function, c.File, c.Line, fn, file, line)
	}
	if len(sym.Stack) == 0 {
		t.Errorf("%s.%s: no stack for the first hit", sym.Package, sym.Name)
	}
}

// readLine reads a line from r within d.
func readLine(t *testing.T, r *bufio.Reader, d time.Duration) string {
	t.Helper()
	type line struct {
		s   string
		err error
	}
	c := make(chan line, 1)
	go func() {
		s, err := r.ReadString('\n')
		c <- line{strings.TrimSuffix(s, "\n"), err}
	}()
	select {
	case l := <-c:
		if l.err != nil {
			t.Fatalf("read a line: %v (got %q)", l.err, l.s)
		}
		return l.s
	case <-time.After(d):
		t.Fatalf("no line within %s", d)
		return ""
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func notesMention(r *report.Report, subs ...string) bool {
	for _, n := range r.Notes {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(n, s)
		}
		if all {
			return true
		}
	}
	return false
}
