package cli

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	reachserver "github.com/reach-sca/reach/internal/server"
	"github.com/reach-sca/reach/internal/server/store"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestServerEndToEnd runs the real reach server in this process, on
// SQLite and on PostgreSQL, and the real reach binary observing textyaml
// under run -server with an enrolment token, twice. The server's findings
// must be the JSON report's, row for row (OSV, package, symbol, callsite,
// status, hits), and the second run must add to the hits, not rows.
func TestServerEndToEnd(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	for _, backend := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"sqlite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "reach.db") }},
		{"postgres", testprog.Postgres},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ctx := context.Background()
			st, url := startReachServer(t, backend.dsn(t))
			token, err := st.CreateEnrolToken(ctx, "e2e", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(envServerToken, token)

			var reports []*report.Report
			var rows [][]string
			for run := 1; run <= 2; run++ {
				out := filepath.Join(t.TempDir(), "report.json")
				res := runReach(t, "run", "-db", db, "-format", "json", "-o", out,
					"-server", url, "-service", "textyaml", "-environment", "e2e", "-server-required", "--", bin)
				if res.code != 0 || res.stdout != "en-US\n" {
					t.Fatalf("run %d: exit %d, stdout %q\n%s", run, res.code, res.stdout, res.stderr)
				}
				r := readReport(t, out)
				reports = append(reports, r)
				want := reportRows(observedBinary(t, r, bin), 1)
				if run == 2 {
					want = reportRows(observedBinary(t, r, bin), 2)
				}
				got := storeRows(t, st, "textyaml")
				if !slices.Equal(got, want) {
					t.Errorf("run %d: the server's findings\n%s\nwant the report's\n%s", run, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				t.Logf("run %d: %d rows\n%s", run, len(got), strings.Join(got, "\n"))
				rows = append(rows, got)
			}
			if len(rows[0]) != len(rows[1]) {
				t.Errorf("the second run changed the number of findings from %d to %d", len(rows[0]), len(rows[1]))
			}
			// A reached row whose hits doubled: the check above is not
			// vacuous.
			if !slices.ContainsFunc(rows[1], func(r string) bool { return strings.Contains(r, "reached") && strings.HasSuffix(r, "hits=2") }) {
				t.Errorf("no reached finding with 2 hits after two runs:\n%s", strings.Join(rows[1], "\n"))
			}
			fs, err := st.Findings(ctx, store.Filter{Service: "textyaml", Status: report.Reached, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.BuildID != observedBinary(t, reports[0], bin).BuildID || !slices.Contains(f.Environments, "e2e") || len(f.Hosts) != 1 {
					t.Errorf("finding %s %s.%s: build ID %q environments %v hosts %v", f.OSV, f.Package, f.Symbol, f.BuildID, f.Environments, f.Hosts)
				}
			}
		})
	}
}

// startReachServer opens a store on dsn and serves the real HTTP server on a
// loopback port until the test ends. It returns the store and the URL.
func startReachServer(t *testing.T, dsn string) (*store.Store, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv, err := reachserver.New(ctx, reachserver.Options{Store: st})
	if err != nil {
		cancel()
		st.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("server did not stop")
		}
		srv.Close()
		st.Close()
	})
	return st, "http://" + ln.Addr().String()
}

// reportRows returns the findings the server should hold for binary b
// reported runs times, one line per row, sorted: a reached symbol has a
// row per callsite (its hits those of the callsite, times runs), any other
// symbol one row without callsite, a finding without symbols one row for
// its module.
func reportRows(b *report.Binary, runs uint64) []string {
	var rows []string
	add := func(osv, pkg, sym string, status report.Status, c *report.Callsite, hits uint64) {
		site := "-"
		if c != nil {
			site = fmt.Sprintf("%s@%s:%d", c.Function, c.File, c.Line)
		}
		rows = append(rows, fmt.Sprintf("%s %s.%s %s %s hits=%d", osv, pkg, sym, site, status, hits*runs))
	}
	for _, f := range b.Findings {
		if len(f.Symbols) == 0 {
			add(f.OSV, f.Module, "", f.Status, nil, 0)
			continue
		}
		for _, s := range f.Symbols {
			if s.Status == report.Reached && len(s.Callsites) > 0 {
				for _, c := range s.Callsites {
					add(f.OSV, s.Package, s.Name, s.Status, c, c.Hits)
				}
				continue
			}
			add(f.OSV, s.Package, s.Name, s.Status, nil, s.Hits)
		}
	}
	slices.Sort(rows)
	return rows
}

// storeRows returns the store's findings of service in reportRows's form.
func storeRows(t *testing.T, st *store.Store, service string) []string {
	t.Helper()
	fs, err := st.Findings(context.Background(), store.Filter{Service: service, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, f := range fs {
		site := "-"
		if f.Callsite != nil {
			site = fmt.Sprintf("%s@%s:%d", f.Callsite.Function, f.Callsite.File, f.Callsite.Line)
		}
		rows = append(rows, fmt.Sprintf("%s %s.%s %s %s hits=%d", f.OSV, f.Package, f.Symbol, site, f.Status, f.Hits))
	}
	slices.Sort(rows)
	return rows
}
