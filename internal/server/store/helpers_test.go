package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// dialects are the stores every test runs on.
var dialects = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "reach.db") }},
	{"postgres", testprog.Postgres},
}

// forEachStore runs f on a fresh store of each dialect.
func forEachStore(t *testing.T, opts Options, f func(t *testing.T, s *Store)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			f(t, openTest(t, d.dsn(t), opts))
		})
	}
}

func openTest(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// enrol makes an agent on s.
func enrol(t testing.TB, s *Store, host string) fleet.EnrolResponse {
	t.Helper()
	ctx := context.Background()
	tok, err := s.CreateEnrolToken(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Enrol(ctx, tok, fleet.EnrolRequest{Hostname: host, ReachVersion: "v0.test"})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// count returns the number of rows of table (WHERE where, if given).
func count(t testing.TB, s *Store, table string, where ...string) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if len(where) > 0 {
		q += " WHERE " + where[0]
	}
	var n int
	if err := s.db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// counts returns the row counts of every table a batch writes.
func counts(t testing.TB, s *Store) map[string]int {
	m := make(map[string]int)
	for _, table := range []string{"batches", "binaries", "vulns", "findings", "sightings", "outbox", "triage_log"} {
		m[table] = count(t, s, table)
	}
	return m
}

// storedRow is what tests read back of a finding row.
type storedRow struct {
	ID           int64
	Status       string
	Hits         int64
	LowerBound   bool
	FirstSeen    int64
	LastSeen     int64
	FirstReached int64 // 0: NULL
	Triage       string
	TriageBy     string
	Stack        string
}

// rowOf reads the finding row of osv, symbol and callsite function (""
// for none) in service.
func rowOf(t testing.TB, s *Store, service, osv, symbol, callsite string) storedRow {
	t.Helper()
	var r storedRow
	var lb int64
	var fr sql.NullInt64
	err := s.db.QueryRowContext(context.Background(), s.rebind(`SELECT id, status, hits, hits_lower_bound, first_seen, last_seen, first_reached,
		triage_state, triage_by, stack FROM findings WHERE service = ? AND osv = ? AND symbol = ? AND callsite_function = ?`),
		service, osv, symbol, callsite).
		Scan(&r.ID, &r.Status, &r.Hits, &lb, &r.FirstSeen, &r.LastSeen, &fr, &r.Triage, &r.TriageBy, &r.Stack)
	if err != nil {
		t.Fatalf("finding %s %s %s %s: %v", service, osv, symbol, callsite, err)
	}
	r.LowerBound = lb != 0
	r.FirstReached = fr.Int64
	return r
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// batch is a batch of agent with one observation of instance on host for
// service, with the findings given.
func batch(agent string, seq uint64, instance, host, service string, findings ...*report.Finding) *fleet.Batch {
	return &fleet.Batch{
		AgentID: agent,
		Seq:     seq,
		Sent:    t0,
		Agent:   fleet.AgentState{Hostname: host, ReachVersion: "v0.test", Processes: 1, Probes: 3},
		Observations: []fleet.Observation{{
			Instance: instance,
			Host:     host,
			Service:  service,
			Mode:     "run",
			PIDs:     []int{42},
			Started:  t0,
			Binary: &report.Binary{
				Path:       "/usr/bin/" + service,
				BuildID:    "build-" + service,
				GoVersion:  "go1.26.8",
				MainModule: "example.com/" + service,
				Modules:    []report.Module{{Path: "golang.org/x/text", Version: "v0.3.0"}},
				Findings:   findings,
			},
		}},
	}
}

// reached is a finding of osv with symbol reached from callsites
// (function name, hits), first hit at first.
func reached(osv, symbol string, first time.Time, callsites ...any) *report.Finding {
	sym := &report.Symbol{Package: "golang.org/x/text/language", Name: symbol, Status: report.Reached,
		FirstSeen: &first, LastSeen: &first,
		Stack: []report.Frame{{Function: "golang.org/x/text/language.Parse", File: "parse.go", Line: 10}}}
	for i := 0; i+1 < len(callsites); i += 2 {
		c := &report.Callsite{Function: callsites[i].(string), File: "main.go", Line: 10 + i, Hits: uint64(callsites[i+1].(int))}
		sym.Callsites = append(sym.Callsites, c)
		sym.Hits += c.Hits
	}
	if len(sym.Callsites) > 0 {
		sym.Stack = append(sym.Stack, report.Frame{Function: sym.Callsites[0].Function, File: "main.go", Line: 10})
	}
	return &report.Finding{OSV: osv, Summary: "summary of " + osv, Aliases: []string{"CVE-" + osv},
		Module: "golang.org/x/text", Version: "v0.3.0", FixedVersion: "v0.3.8",
		Status: report.Reached, Symbols: []*report.Symbol{sym}}
}

// linked is a finding of osv whose symbol is linked.
func linked(osv, symbol string) *report.Finding {
	return &report.Finding{OSV: osv, Summary: "summary of " + osv, Module: "golang.org/x/text", Version: "v0.3.0",
		Status: report.Linked, Symbols: []*report.Symbol{{Package: "golang.org/x/text/language", Name: symbol, Status: report.Linked}}}
}

func mustIngest(t testing.TB, s *Store, agent string, b *fleet.Batch) IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), agent, b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (r storedRow) String() string {
	return fmt.Sprintf("{id %d %s hits %d triage %s by %s}", r.ID, r.Status, r.Hits, r.Triage, r.TriageBy)
}
