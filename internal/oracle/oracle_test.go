package oracle

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestReachAgreesWithCoverage runs CICases, real projects' own test suites
// fetched through the module proxy, with coverage and under reach, and
// fails on every disagreement: a vulnerable symbol that ran and is not
// reported reached, one reported reached that did not run, a -count hit
// count that is neither the call count nor marked as a lower bound, and a
// test whose result changed under reach.
func TestReachAgreesWithCoverage(t *testing.T) {
	testprog.RequireRoot(t)
	db := testprog.RealDB(t)
	if testing.Short() {
		t.Skip("builds and runs real projects' test suites (about two minutes)")
	}
	cfg := Config{
		Reach: testprog.Build(t, filepath.Join("..", "..", "cmd", "reach"), testprog.Plain),
		DB:    db,
		Work:  t.TempDir(),
		Log:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	for _, c := range CICases() {
		t.Run(c.Name, func(t *testing.T) {
			r, err := Check(context.Background(), cfg, c)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			WriteTable(&b, []*Result{r})
			WriteDetails(&b, []*Result{r})
			t.Log("\n" + b.String())
			if r.Vulnerable == len(r.Uncovered) {
				t.Fatalf("no vulnerable code coverage can count in %s", c.Name)
			}
			for _, run := range r.Runs {
				name := run.Binary + map[bool]string{false: " one-shot", true: " -count"}[run.Count]
				if run.Covered == 0 {
					t.Errorf("%s: coverage saw no vulnerable code run: the case checks nothing", name)
				}
				for _, m := range run.Missed {
					t.Errorf("%s: ran but not reported reached: %s", name, m)
				}
				for _, m := range run.False {
					t.Errorf("%s: reported reached but did not run: %s", name, m)
				}
				for _, m := range run.WrongCounts {
					t.Errorf("%s: wrong count: %s", name, m)
				}
				if run.TestsDiff != "" {
					t.Errorf("%s: the tests' results changed under reach: %s", name, run.TestsDiff)
				}
			}
		})
	}
}

// testWriter logs through t.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
