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
// (plain, stripped PIE, inlined, built with go1.21.0) and lifecycle
// calling language.Parse 1000 times (-count) under run -server with an
// enrolment token, twice each. The server's findings must be the JSON reports',
// row for row (OSV, package, symbol, callsite, status), with the hits of
// both runs added up: the second run adds to the hits, not rows.
func TestServerEndToEnd(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
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
			type program struct {
				name, dir string
				v         testprog.Variant
				flags     []string // of reach run
				args      []string // of the program
				stdout    string
			}
			progs := []program{
				// lifecycle calls language.Parse 1000 times from main.parse:
				// counted, 2000 hits on the server after two runs.
				{"count", "lifecycle", testprog.Plain, []string{"-count"}, []string{"count", "1000"}, "1000\n"},
			}
			for _, v := range []testprog.Variant{testprog.Plain, testprog.StrippedPIE, testprog.Inlined, {Name: "go1.21.0", Toolchain: "go1.21.0"}} {
				progs = append(progs, program{v.Name, "textyaml", v, nil, nil, "en-US\n"})
			}
			for _, p := range progs {
				t.Run(p.name, func(t *testing.T) {
					bin := testprog.Build(t, testprog.Dir(t, p.dir), p.v)
					service := p.dir + "-" + p.name
					want := map[string]uint64{}
					var buildID string
					for run := 1; run <= 2; run++ {
						out := filepath.Join(t.TempDir(), "report.json")
						args := append([]string{"run", "-db", db, "-format", "json", "-o", out,
							"-server", url, "-service", service, "-environment", "e2e", "-server-required"}, p.flags...)
						res := runReach(t, append(append(args, "--", bin), p.args...)...)
						if res.code != 0 || res.stdout != p.stdout {
							t.Fatalf("run %d: exit %d, stdout %q\n%s", run, res.code, res.stdout, res.stderr)
						}
						b := observedBinary(t, readReport(t, out), bin)
						buildID = b.BuildID
						for k, hits := range reportRows(b) {
							// The second run adds hits, not rows, except a
							// symbol's row without a callsite: one-shot mode
							// records the first hit's callsite only, and how
							// many more calls come before the probes are gone
							// varies from run to run.
							if _, ok := want[k]; run == 2 && !ok && !strings.HasSuffix(k, " - reached") {
								t.Errorf("the second run has a finding the first had not: %s", k)
							}
							want[k] += hits
						}
						got := storeRows(t, st, service)
						if g, w := lines(got), lines(want); g != w {
							t.Errorf("run %d: the server's findings\n%s\nwant the reports'\n%s", run, g, w)
						}
						t.Logf("run %d: %d rows\n%s", run, len(got), lines(got))
					}
					// A reached row with hits from both runs: the check
					// above is not vacuous.
					doubled := false
					for k, hits := range want {
						doubled = doubled || strings.Contains(k, " reached") && hits >= 2
					}
					if !doubled {
						t.Errorf("no reached finding with hits from both runs:\n%s", lines(want))
					}
					if p.name == "count" {
						// The program's own count, independent of reach.
						var parse uint64
						for k, hits := range storeRows(t, st, service) {
							if strings.HasPrefix(k, textOSV+" "+textPkg+".Parse main.parse@") {
								parse += hits
							}
						}
						if parse != 2000 {
							t.Errorf("language.Parse from main.parse: %d hits on the server, want the 2 x 1000 calls", parse)
						}
					}
					fs, err := st.Findings(ctx, store.Filter{Service: service, Status: report.Reached, Limit: 1000})
					if err != nil {
						t.Fatal(err)
					}
					if len(fs) == 0 {
						t.Fatalf("no reached finding stored for %s", service)
					}
					for _, f := range fs {
						if f.BuildID != buildID || !slices.Contains(f.Environments, "e2e") || len(f.Hosts) != 1 {
							t.Errorf("finding %s %s.%s: build ID %q environments %v hosts %v, want %q e2e and one host", f.OSV, f.Package, f.Symbol, f.BuildID, f.Environments, f.Hosts, buildID)
						}
					}
				})
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

// reportRows returns the findings the server should hold for binary b,
// keyed "OSV PKG.SYMBOL CALLSITE STATUS", with their hits, as
// docs/server.md has it: a reached symbol has a row per callsite (its hits
// those of the callsite) and a row without callsite ("-") for the hits no
// callsite was recorded for, any other symbol one row without callsite, a
// finding without symbols one row for its module.
func reportRows(b *report.Binary) map[string]uint64 {
	rows := map[string]uint64{}
	add := func(osv, pkg, sym string, status report.Status, c *report.Callsite, hits uint64) {
		rows[rowKey(osv, pkg, sym, status, c)] += hits
	}
	for _, f := range b.Findings {
		if len(f.Symbols) == 0 {
			add(f.OSV, f.Module, "", f.Status, nil, 0)
			continue
		}
		for _, s := range f.Symbols {
			if s.Status == report.Reached && len(s.Callsites) > 0 {
				var attributed uint64
				for _, c := range s.Callsites {
					add(f.OSV, s.Package, s.Name, s.Status, c, c.Hits)
					attributed += c.Hits
				}
				if s.Hits > attributed {
					add(f.OSV, s.Package, s.Name, s.Status, nil, s.Hits-attributed)
				}
				continue
			}
			add(f.OSV, s.Package, s.Name, s.Status, nil, s.Hits)
		}
	}
	return rows
}

func rowKey(osv, pkg, sym string, status report.Status, c *report.Callsite) string {
	site := "-"
	if c != nil {
		site = fmt.Sprintf("%s@%s:%d", c.Function, c.File, c.Line)
	}
	return fmt.Sprintf("%s %s.%s %s %s", osv, pkg, sym, site, status)
}

// storeRows returns the store's findings of service in reportRows's form.
func storeRows(t *testing.T, st *store.Store, service string) map[string]uint64 {
	t.Helper()
	fs, err := st.Findings(context.Background(), store.Filter{Service: service, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]uint64{}
	for _, f := range fs {
		k := rowKey(f.OSV, f.Package, f.Symbol, f.Status, f.Callsite)
		if _, dup := rows[k]; dup {
			t.Errorf("the store holds %s twice", k)
		}
		rows[k] = f.Hits
	}
	return rows
}

// lines returns rows as sorted lines "KEY hits=N".
func lines(rows map[string]uint64) string {
	var l []string
	for k, hits := range rows {
		l = append(l, fmt.Sprintf("%s hits=%d", k, hits))
	}
	slices.Sort(l)
	return strings.Join(l, "\n")
}
