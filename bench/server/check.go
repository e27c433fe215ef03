package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/reach-sca/reach/internal/server/store"
)

// stored is what a server's database holds, read with SQL beside the
// server: the oracle of "nothing lost, nothing doubled".
type stored struct {
	rows, sightings, batches int64
	hits, sightingHits       uint64
}

// readStore reads srv's database directly.
func (s *server) readStore(ctx context.Context) (stored, error) {
	driver, dsn := "pgx", s.store
	if s.store != "" {
		for _, e := range s.env {
			if pw, ok := strings.CutPrefix(e, "PGPASSWORD="); ok {
				u, err := url.Parse(s.store)
				if err != nil {
					return stored{}, err
				}
				u.User = url.UserPassword(u.User.Username(), pw)
				dsn = u.String()
			}
		}
	} else {
		path, err := sqliteFile(s.data)
		if err != nil {
			return stored{}, err
		}
		driver, dsn = "sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return stored{}, err
	}
	defer db.Close()
	var st stored
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(hits), 0) FROM findings`).Scan(&st.rows, &st.hits); err != nil {
		return st, fmt.Errorf("%s: read findings: %w", s.name, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(hits), 0) FROM sightings`).Scan(&st.sightings, &st.sightingHits); err != nil {
		return st, fmt.Errorf("%s: read sightings: %w", s.name, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM batches`).Scan(&st.batches); err != nil {
		return st, fmt.Errorf("%s: read batches: %w", s.name, err)
	}
	return st, nil
}

// sqliteFile finds the SQLite database in a server's data directory.
func sqliteFile(data string) (string, error) {
	for _, pat := range []string{"*.db", "*.sqlite", "*.sqlite3"} {
		m, _ := filepath.Glob(filepath.Join(data, pat))
		if len(m) == 1 {
			return m[0], nil
		}
	}
	entries, _ := os.ReadDir(data)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return "", fmt.Errorf("no SQLite database in %s (%s)", data, strings.Join(names, ", "))
}

// check compares what srv stores with what the agents sent, and returns
// the differences (none when all is well).
func check(ctx context.Context, srv *server, agents []*agent, l *load, led *ledger) ([]string, stored, error) {
	st, err := srv.readStore(ctx)
	if err != nil {
		return nil, st, err
	}
	var want uint64 = led.seedHits
	for _, a := range agents {
		for _, s := range l.agentSpecs(a.n) {
			want += a.k * s.weight
		}
	}
	rows := int64(led.rows())
	var bad []string
	diff := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			bad = append(bad, fmt.Sprintf("%s: stored %v, sent %v", what, got, want))
		}
	}
	diff("finding rows", st.rows, rows)
	diff("sightings (finding x instance)", st.sightings, rows)
	diff("hits of findings", st.hits, want)
	diff("hits of sightings", st.sightingHits, want)
	diff("batches", st.batches, int64(led.batches))
	if led.unexpectedDup > 0 {
		bad = append(bad, fmt.Sprintf("%d new batches answered as duplicates", led.unexpectedDup))
	}
	if led.duplicatesNotOK > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d batches sent twice not answered as duplicates with 0 updates", led.duplicatesNotOK, led.duplicates))
	}
	if led.updateMismatch > 0 {
		bad = append(bad, fmt.Sprintf("%d batches answered with more updates than their finding rows", led.updateMismatch))
	}
	var ov store.Overview
	if _, err := doJSON(ctx, "GET", srv.base+"/api/v1/overview", srv.admin, nil, &ov); err != nil {
		return bad, st, err
	}
	n := 0
	for _, c := range ov.Findings {
		n += c
	}
	diff("findings in GET /api/v1/overview", n, rows)
	return bad, st, nil
}

// errNoDashboard is the page time of a server without the dashboard
// (GET / answers 404).
const errNoDashboard time.Duration = -1

// timeOverview times one GET /api/v1/overview (admin token) and one GET /
// (the dashboard, logged in), each read to its end; page is
// errNoDashboard when the server has no dashboard.
func timeOverview(ctx context.Context, srv *server) (api, page time.Duration, err error) {
	start := time.Now()
	var ov store.Overview
	if _, err := doJSON(ctx, "GET", srv.base+"/api/v1/overview", srv.admin, nil, &ov); err != nil {
		return 0, 0, err
	}
	api = time.Since(start)
	if len(ov.Findings) == 0 {
		return 0, 0, fmt.Errorf("%s: GET /api/v1/overview counts no findings", srv.name)
	}
	start = time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/", nil)
	if err != nil {
		return 0, 0, err
	}
	r, err := srv.dash.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	page = time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if r.StatusCode == http.StatusNotFound {
		return api, errNoDashboard, nil
	}
	if r.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: GET / of the dashboard: %s", srv.name, r.Status)
	}
	// The ranking names the generated OSV entries.
	if !strings.Contains(string(body), "GO-202") {
		return 0, 0, fmt.Errorf("%s: GET / of the dashboard names no vulnerability (%d bytes)", srv.name, len(body))
	}
	return api, page, nil
}
