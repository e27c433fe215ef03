package dashboard

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
	"github.com/reach-sca/reach/internal/testprog"
)

// A test store, and the database under it opened a second time, for
// inserting rows in bulk: storing 100,000 findings through Ingest would
// take most of a benchmark's time and measure the write path.
type testDB struct {
	st  *store.Store
	db  *sql.DB
	dsn string
}

// openSQLite opens a store in a temporary SQLite file.
func openSQLite(tb testing.TB) *testDB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "reach.db")
	return openTestDB(tb, path, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
}

// openPostgres opens a store in a fresh PostgreSQL database
// (testprog.Postgres: skips without REACH_TEST_POSTGRES).
func openPostgres(tb testing.TB) *testDB {
	tb.Helper()
	dsn := testprog.Postgres(tb)
	return openTestDB(tb, dsn, "pgx", dsn)
}

func openTestDB(tb testing.TB, dsn, driver, raw string) *testDB {
	tb.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	db, err := sql.Open(driver, raw)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return &testDB{st: st, db: db, dsn: dsn}
}

// row is one finding, with the one host that saw it.
type row struct {
	Service, BuildID, OSV, Package, Symbol string
	CFunc, CFile                           string
	CLine                                  int
	Module, Version, Fixed                 string
	Status                                 report.Status
	Hits                                   int64
	Stack                                  []report.Frame
	FirstSeen, LastSeen                    time.Time
	FirstReached                           *time.Time
	Host, Env                              string
}

// insert writes rows in multi-row INSERTs, in one transaction, with the
// vulns (summary "summary of OSV") and binaries they name.
func (t *testDB) insert(tb testing.TB, rows []row) {
	tb.Helper()
	ctx := context.Background()
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	vulns, bins := map[string]bool{}, map[[2]string]bool{}
	var vrows, brows [][]any
	for _, r := range rows {
		if !vulns[r.OSV] {
			vulns[r.OSV] = true
			vrows = append(vrows, []any{r.OSV, "summary of " + r.OSV, `["CVE-` + r.OSV + `"]`})
		}
		if k := [2]string{r.Service, r.BuildID}; !bins[k] {
			bins[k] = true
			mods, _ := json.Marshal([]report.Module{{Path: r.Module, Version: r.Version}})
			brows = append(brows, []any{r.Service, r.BuildID, "/srv/" + r.Service, "go1.26.8", "example.com/" + r.Service, "v1.0.0", 0, 1, string(mods), r.FirstSeen.UnixNano(), r.LastSeen.UnixNano()})
		}
	}
	t.bulk(tb, tx, `INSERT INTO vulns (osv, summary, aliases) VALUES`, vrows)
	t.bulk(tb, tx, `INSERT INTO binaries (service, build_id, path, go_version, main_module, main_version, stripped, pie, modules, first_seen, last_seen) VALUES`, brows)
	var frows [][]any
	for i, r := range rows {
		var reached any
		if r.FirstReached != nil {
			reached = r.FirstReached.UnixNano()
		}
		stack, _ := json.Marshal(r.Stack)
		if r.Stack == nil {
			stack = []byte("[]")
		}
		triage := ""
		if r.Status == report.Reached {
			triage = store.StateAffected
		}
		frows = append(frows, []any{int64(i + 1), r.Service, r.BuildID, r.OSV, r.Package, r.Symbol, r.CFunc, r.CFile, r.CLine,
			r.Module, r.Version, r.Fixed, string(r.Status), r.Status.Rank(), r.Hits, string(stack),
			r.FirstSeen.UnixNano(), r.LastSeen.UnixNano(), reached, triage, "reach"})
	}
	t.bulk(tb, tx, `INSERT INTO findings (id, service, build_id, osv, package, symbol, callsite_function, callsite_file, callsite_line,
  module, version, fixed_version, status, status_rank, hits, stack, first_seen, last_seen, first_reached, triage_state, triage_by) VALUES`, frows)
	var srows [][]any
	for i, r := range rows {
		srows = append(srows, []any{int64(i + 1), "inst-" + r.Host, "agent-" + r.Host, r.Host, r.Env, r.Hits, r.FirstSeen.UnixNano(), r.LastSeen.UnixNano()})
	}
	t.bulk(tb, tx, `INSERT INTO sightings (finding_id, instance, agent_id, host, environment, hits, first_seen, last_seen) VALUES`, srows)
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	// The rows went around the store: its summary table is filled from
	// them as migration 0005 fills it.
	if err := t.st.RebuildSummary(ctx); err != nil {
		tb.Fatal(err)
	}
	if t.st.Postgres() { // ids were given: move the identity past them
		if _, err := t.db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('findings', 'id'), (SELECT MAX(id) FROM findings))`); err != nil {
			tb.Fatal(err)
		}
		// A running server's tables are vacuumed by autovacuum soon after
		// a bulk insert (PostgreSQL 13 and later count inserts too), which
		// sets the visibility map that index-only scans need.
		if _, err := t.db.ExecContext(ctx, `VACUUM ANALYZE findings, sightings, binaries, vulns, service_vulns`); err != nil {
			tb.Fatal(err)
		}
	} else if _, err := t.db.ExecContext(ctx, `ANALYZE`); err != nil {
		tb.Fatal(err)
	}
}

// bulk inserts rows with insert (ending in VALUES), 400 rows a statement.
func (t *testDB) bulk(tb testing.TB, tx *sql.Tx, insert string, rows [][]any) {
	tb.Helper()
	for len(rows) > 0 {
		n := min(len(rows), 400)
		var b strings.Builder
		b.WriteString(insert)
		var args []any
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" (")
			for j, v := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				args = append(args, v)
				if t.st.Postgres() {
					b.WriteString("$" + strconv.Itoa(len(args)))
				} else {
					b.WriteString("?")
				}
			}
			b.WriteString(")")
		}
		if _, err := tx.Exec(b.String(), args...); err != nil {
			tb.Fatalf("%s...: %v", insert, err)
		}
		rows = rows[n:]
	}
}

// fleetRows returns n findings of a synthetic fleet, a deterministic
// function of n and services, shaped like a real one: each service with 5
// builds over time that share most of their findings, each build with
// n/services/5 findings over 60 of the 400 OSV entries (several symbols
// and callsites each); a fifth of the findings reached, over the last 120
// days.
func fleetRows(n, services int, now time.Time) []row {
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []report.Status{report.Reached, report.NotWatched, report.Linked, report.Linked, report.Imported}
	rows := make([]row, n)
	for i := range rows {
		svc := i % services
		build := (i / services) % 5
		osv := (svc*37 + rng.IntN(60)) % 400 // the service's 60 entries
		st := statuses[rng.IntN(len(statuses))]
		first := now.Add(-time.Duration(rng.IntN(120*24)) * time.Hour)
		r := row{
			Service: fmt.Sprintf("svc-%03d", svc), BuildID: fmt.Sprintf("build-%03d-%d", svc, build),
			OSV: fmt.Sprintf("GO-2025-%04d", osv), Package: fmt.Sprintf("example.com/m%d/p", osv%50),
			Symbol: fmt.Sprintf("F%d", rng.IntN(4)), Module: fmt.Sprintf("example.com/m%d", osv%50), Version: "v1.0.0", Fixed: "v1.0.1",
			Status: st, FirstSeen: first, LastSeen: first.Add(time.Hour),
			Host: fmt.Sprintf("host-%03d", svc%80), Env: []string{"prod", "staging"}[svc%2],
		}
		if st == report.Reached {
			r.CFunc, r.CFile = "main.handler", "/src/main.go"
			r.Hits = int64(1 + rng.IntN(1000))
			r.FirstReached = &first
		}
		r.CLine = i // keeps rows unique in this synthetic fleet
		rows[i] = r
	}
	return rows
}
