package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

func TestSetTriageInvalid(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	tests := []struct {
		name string
		req  TriageRequest
	}{
		{"unknown state", TriageRequest{OSV: "GO-1", Triage: Triage{State: "ignored", By: "alice"}}},
		{"no state", TriageRequest{OSV: "GO-1", Triage: Triage{By: "alice"}}},
		{"not_affected without justification", TriageRequest{OSV: "GO-1", Triage: Triage{State: StateNotAffected, By: "alice"}}},
		{"not_affected with another justification", TriageRequest{OSV: "GO-1", Triage: Triage{State: StateNotAffected, Justification: "trust me", By: "alice"}}},
		{"nothing to triage", TriageRequest{Triage: Triage{State: StateAffected, By: "alice"}}},
		{"finding and OSV", TriageRequest{FindingID: 1, OSV: "GO-1", Triage: Triage{State: StateAffected, By: "alice"}}},
		{"nobody", TriageRequest{OSV: "GO-1", Triage: Triage{State: StateAffected}}},
		{"by reach", TriageRequest{OSV: "GO-1", Triage: Triage{State: StateAffected, By: "reach"}}},
		{"expired", TriageRequest{OSV: "GO-1", Triage: Triage{State: StateAffected, By: "alice", Expires: &past}}},
		{"long note", TriageRequest{OSV: "GO-1", Triage: Triage{State: StateAffected, By: "alice", Note: string(make([]byte, MaxString+1))}}},
	}
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		for _, tt := range tests {
			if _, err := s.SetTriage(context.Background(), tt.req); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
			}
		}
		if n := count(t, s, "triage_rules") + count(t, s, "triage_log"); n != 0 {
			t.Errorf("%d triage rows stored from invalid requests", n)
		}
		_, err := s.SetTriage(context.Background(), TriageRequest{FindingID: 999, Triage: Triage{State: StateAffected, By: "alice"}})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("triage of a finding that does not exist: %v, want ErrNotFound", err)
		}
	})
}

// TestSetTriage follows the precedence of triage states: a finding's own
// state over any rule, a more specific rule over a less specific one, and
// rules over reach's automatic affected; rules apply to findings stored
// later.
func TestSetTriage(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		seq := uint64(0)
		ingest := func(service string) {
			seq++
			mustIngest(t, s, ag.AgentID, batch(ag.AgentID, seq, "i-"+service, "h1", service,
				reached("GO-1", "Parse", t0), linked("GO-2", "Compose")))
		}
		triage := func(req TriageRequest, want int) {
			t.Helper()
			n, err := s.SetTriage(ctx, req)
			if err != nil || n != want {
				t.Errorf("SetTriage(%+v) = %d, %v; want %d changed", req, n, err, want)
			}
		}
		state := func(service, osv, symbol string) (string, string) {
			t.Helper()
			r := rowOf(t, s, service, osv, symbol, "")
			return r.Triage, r.TriageBy
		}
		ingest("api")
		ingest("web")

		// A finding of its own.
		own := rowOf(t, s, "web", "GO-1", "Parse", "").ID
		triage(TriageRequest{FindingID: own, Triage: Triage{State: StateUnderInvestigation, Note: "looking", By: "bob"}}, 1)
		// GO-1 across services: api's (affected by reach) changes, web's
		// own state does not.
		triage(TriageRequest{OSV: "GO-1", Triage: Triage{State: StateNotAffected,
			Justification: "vulnerable_code_cannot_be_controlled_by_adversary", By: "alice"}}, 1)
		if st, by := state("api", "GO-1", "Parse"); st != StateNotAffected || by != "alice" {
			t.Errorf("api GO-1 = %s by %s, want alice's not_affected", st, by)
		}
		if st, by := state("web", "GO-1", "Parse"); st != StateUnderInvestigation || by != "bob" {
			t.Errorf("web GO-1 = %s by %s, want bob's own under_investigation", st, by)
		}
		// The whole api service: less specific than the OSV rule, so only
		// api's GO-2 (no state) changes.
		triage(TriageRequest{Service: "api", Triage: Triage{State: StateUnderInvestigation, By: "carol"}}, 1)
		if st, _ := state("api", "GO-1", "Parse"); st != StateNotAffected {
			t.Errorf("api GO-1 = %s, want the OSV rule's not_affected over the service rule", st)
		}
		if st, by := state("api", "GO-2", "Compose"); st != StateUnderInvestigation || by != "carol" {
			t.Errorf("api GO-2 = %s by %s, want carol's service rule", st, by)
		}
		// The most specific: GO-1 in api.
		triage(TriageRequest{Service: "api", OSV: "GO-1", Triage: Triage{State: StateFixed, By: "dave"}}, 1)
		if st, by := state("api", "GO-1", "Parse"); st != StateFixed || by != "dave" {
			t.Errorf("api GO-1 = %s by %s, want dave's fixed", st, by)
		}

		// Rules apply to findings stored later: GO-1 in a new service
		// takes the OSV rule's state though it is reached; its GO-2 has no
		// rule and no state.
		ingest("worker")
		if st, by := state("worker", "GO-1", "Parse"); st != StateNotAffected || by != "alice" {
			t.Errorf("new worker GO-1 = %s by %s, want alice's OSV rule", st, by)
		}
		if st, _ := state("worker", "GO-2", "Compose"); st != "" {
			t.Errorf("new worker GO-2 = %s, want none", st)
		}
		// A new api finding takes the service rule.
		seq++
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, seq, "i-api", "h1", "api", linked("GO-3", "Other")))
		if st, by := state("api", "GO-3", "Other"); st != StateUnderInvestigation || by != "carol" {
			t.Errorf("new api GO-3 = %s by %s, want carol's service rule", st, by)
		}
		// A decision replaces the rule for its service and OSV.
		triage(TriageRequest{OSV: "GO-1", Triage: Triage{State: StateAffected, By: "alice"}}, 1)
		if st, _ := state("worker", "GO-1", "Parse"); st != StateAffected {
			t.Errorf("worker GO-1 = %s after the OSV rule changed, want affected", st)
		}
		if n := count(t, s, "triage_rules"); n != 3 {
			t.Errorf("%d triage rules, want 3", n)
		}
		if n := count(t, s, "triage_log"); n != 5 {
			t.Errorf("%d decisions logged, want 5", n)
		}
	})
}

// TestSetTriageConcurrent triages in bulk while agents report the same
// findings: both lock finding rows, in different orders; neither fails
// (a deadlock's victim runs again), and the rules hold at the end.
func TestSetTriageConcurrent(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		var ids []string
		for i := range 4 {
			ids = append(ids, enrol(t, s, fmt.Sprint("h", i)).AgentID)
		}
		findings := func(seq int) []*report.Finding {
			var fs []*report.Finding
			for v := range 30 {
				fs = append(fs, reached(fmt.Sprintf("GO-%d", v), "Parse", t0, "main.a", seq, "main.b", seq))
			}
			return fs
		}
		var wg sync.WaitGroup
		for a, id := range ids {
			wg.Go(func() {
				for seq := 1; seq <= 5; seq++ {
					b := batch(id, uint64(seq), fmt.Sprint("i", a), fmt.Sprint("h", a), "api", findings(seq)...)
					if _, err := s.Ingest(ctx, id, b); err != nil {
						t.Error(err)
					}
				}
			})
		}
		for v := range 30 {
			wg.Go(func() {
				req := TriageRequest{OSV: fmt.Sprintf("GO-%d", v), Triage: Triage{State: StateUnderInvestigation, By: "alice"}}
				if _, err := s.SetTriage(ctx, req); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := count(t, s, "findings", "triage_state <> 'under_investigation'"); n != 0 {
			t.Errorf("%d findings without the rules' state", n)
		}
		if r := rowOf(t, s, "api", "GO-7", "Parse", "main.a"); r.Hits != 4*5 {
			t.Errorf("hits %d, want %d", r.Hits, 4*5)
		}
	})
}
