package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// randomFinding is a finding of one of 6 OSV entries, of one of 3
// symbols, with a random status and first hit.
func randomFinding(rng *rand.Rand) *report.Finding {
	osv := fmt.Sprintf("GO-2026-%04d", rng.IntN(6))
	first := t0.Add(time.Duration(rng.IntN(1000)) * time.Minute)
	sym := fmt.Sprintf("F%d", rng.IntN(3))
	switch rng.IntN(4) {
	case 0:
		return reached(osv, sym, first, "main.a", 1+rng.IntN(5), "main.b", rng.IntN(3))
	case 1:
		f := linked(osv, sym)
		f.Status, f.Symbols[0].Status = report.NotWatched, report.NotWatched
		return f
	case 2:
		return &report.Finding{OSV: osv, Module: "golang.org/x/text", Version: "v0.3.0", Status: report.Imported}
	}
	return linked(osv, sym)
}

// ingestRandom has agent send batches seq from..to-1 of random findings
// of one of 3 services.
func ingestRandom(t testing.TB, s *Store, rng *rand.Rand, agent string, from, to int) error {
	for seq := from; seq < to; seq++ {
		var fs []*report.Finding
		for range 1 + rng.IntN(8) {
			fs = append(fs, randomFinding(rng))
		}
		b := batch(agent, uint64(seq), agent+"/i", "h-"+agent, fmt.Sprintf("svc-%d", rng.IntN(3)), fs...)
		if _, err := s.Ingest(context.Background(), agent, b); err != nil {
			return err
		}
	}
	return nil
}

// checkSummary checks that the summary table is what the findings say,
// row for row, and that the overview read from it is the one read from
// the findings, unfiltered and filtered by a service or OSV.
func checkSummary(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	read := func(q string) map[string]string {
		out := map[string]string{}
		err := s.each(ctx, q, nil, func(rows *sql.Rows) error {
			var service, osv string
			var r, ls, n4, n3, n2, n1 int64
			var fr sql.NullInt64
			if err := rows.Scan(&service, &osv, &r, &fr, &ls, &n4, &n3, &n2, &n1); err != nil {
				return err
			}
			out[service+" "+osv] = fmt.Sprint(r, fr, ls, n4, n3, n2, n1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := read(`SELECT ` + summaryAggregates + ` FROM findings f GROUP BY f.service, f.osv`)
	got := read(`SELECT ` + summaryRows + ` FROM service_vulns f`)
	if len(want) == 0 {
		t.Fatal("no findings stored")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary table:\n got %v\nwant %v (from the findings)", got, want)
	}
	for _, f := range []Filter{{}, {Service: "svc-1"}, {OSV: "GO-2026-0002"}, {Limit: 2, Offset: 1}} {
		if !summaryAnswers(f) {
			t.Fatalf("summaryAnswers(%+v) = false", f)
		}
		w, err := s.filterWhere(f, true)
		if err != nil {
			t.Fatal(err)
		}
		var fromSummary, fromFindings Overview
		for _, o := range []*Overview{&fromSummary, &fromFindings} {
			o.Findings, o.Vulns = map[report.Status]int{}, map[report.Status]int{}
			if err := s.rankVulns(ctx, w, f, o == &fromSummary, o); err != nil {
				t.Fatal(err)
			}
		}
		if len(fromFindings.Ranked) == 0 {
			t.Errorf("filter %+v: nothing ranked", f)
		}
		if !reflect.DeepEqual(fromSummary, fromFindings) {
			t.Errorf("filter %+v: overview from the summary:\n%+v\nfrom the findings:\n%+v", f, fromSummary, fromFindings)
		}
	}
}

// TestSummaryRandomIngests stores random batches, one after another, and
// checks the summary after each few.
func TestSummaryRandomIngests(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		rng := rand.New(rand.NewPCG(1, 2))
		agents := []string{enrol(t, s, "a").AgentID, enrol(t, s, "b").AgentID}
		seq := 1
		for range 6 {
			for _, a := range agents {
				if err := ingestRandom(t, s, rng, a, seq, seq+5); err != nil {
					t.Fatal(err)
				}
			}
			seq += 5
			checkSummary(t, s)
		}
	})
}

// TestSummaryConcurrentIngests stores random batches from 8 agents at
// once, which update the same services and OSV entries.
func TestSummaryConcurrentIngests(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for a := range 8 {
			id := enrol(t, s, fmt.Sprintf("h%d", a)).AgentID
			wg.Go(func() {
				if err := ingestRandom(t, s, rand.New(rand.NewPCG(uint64(a), 7)), id, 1, 16); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkSummary(t, s)
	})
}

// TestSummaryMigration runs migration 0005 on a store with findings: its
// backfill is what the findings say. So does RebuildSummary's.
func TestSummaryMigration(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			s := openTest(t, dsn, Options{})
			rng := rand.New(rand.NewPCG(3, 4))
			if err := ingestRandom(t, s, rng, enrol(t, s, "a").AgentID, 1, 30); err != nil {
				t.Fatal(err)
			}
			// Back to the store before migration 0005, with its findings.
			for _, q := range []string{`DROP TABLE service_vulns`, `DELETE FROM schema_migrations WHERE version = 5`} {
				if _, err := s.db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s = openTest(t, dsn, Options{})
			if n := count(t, s, "service_vulns"); n == 0 {
				t.Fatal("migration 0005 filled no summary rows")
			}
			checkSummary(t, s)
			if _, err := s.db.Exec(`DELETE FROM service_vulns`); err != nil {
				t.Fatal(err)
			}
			if err := s.RebuildSummary(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkSummary(t, s)
		})
	}
}
