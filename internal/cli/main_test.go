package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

func TestMain(m *testing.M) {
	probe.RunKeeperIfRequested() // the probe engine's keeper is this binary
	// This binary is also the scripts' reach (see TestScript).
	testscript.Main(cleanupM{m}, map[string]func(){"reach": reachMain})
}

// cleanupM runs the tests, then removes testprog's builds.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	testprog.Cleanup()
	return code
}

// realDB returns the real vulnerability database the tests read, from
// REACH_TEST_VULNDB. It skips the test when it is unset, except in CI, where
// a skip would hide the test.
func realDB(t *testing.T) string {
	t.Helper()
	return testprog.RealDB(t)
}

// reach runs the command line and returns its stdout, stderr and exit code.
func reach(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, bytes.NewReader(nil), &out, &errb)
	code = ExitCode(err, &errb)
	return out.String(), errb.String(), code
}

// scanJSON scans bins with the real database and decodes the JSON report.
func scanJSON(t *testing.T, db string, bins ...string) *report.Report {
	t.Helper()
	args := append([]string{"scan", "-db", db, "-format", "json", "-fail-on", "never"}, bins...)
	out, errs, code := reach(t, args...)
	if code != 0 {
		t.Fatalf("reach %v: exit %d\n%s", args, code, errs)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out)
	}
	return &r
}

func findFinding(b *report.Binary, id string) *report.Finding {
	for _, f := range b.Findings {
		if f.OSV == id {
			return f
		}
	}
	return nil
}

func findSymbol(f *report.Finding, pkg, name string) *report.Symbol {
	for _, s := range f.Symbols {
		if s.Package == pkg && s.Name == name {
			return s
		}
	}
	return nil
}
