package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
)

func TestIngestIdempotent(t *testing.T) {
	forEachStore(t, Options{Sinks: []string{"otlp", "webhook"}}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		b := batch(ag.AgentID, 1, "i1", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 3, "main.b", 4), linked("GO-2", "Compose"))
		res := mustIngest(t, s, ag.AgentID, b)
		if res.Duplicate || res.Updates != 3 || len(res.Reached) != 2 {
			t.Fatalf("first ingest = %+v, want 3 updates (2 callsites, 1 linked), 2 reached", res)
		}
		before := counts(t, s)
		a := rowOf(t, s, "api", "GO-1", "Parse", "main.a")
		again := mustIngest(t, s, ag.AgentID, b)
		if !again.Duplicate || again.Updates != 0 || len(again.Reached) != 0 {
			t.Errorf("same batch again = %+v, want a duplicate that updates nothing", again)
		}
		if after := counts(t, s); !maps.Equal(before, after) {
			t.Errorf("rows after the duplicate %v, before %v", after, before)
		}
		if got := rowOf(t, s, "api", "GO-1", "Parse", "main.a"); got != a {
			t.Errorf("row after the duplicate %v, before %v", got, a)
		}
		if before["outbox"] != 4 {
			t.Errorf("outbox has %d rows, want 2 reached findings x 2 sinks", before["outbox"])
		}
		if a.Hits != 3 || a.Status != "reached" || a.Triage != StateAffected || a.TriageBy != "reach" {
			t.Errorf("reached row = %v, want 3 hits, reached, affected by reach", a)
		}
		if l := rowOf(t, s, "api", "GO-2", "Compose", ""); l.Status != "linked" || l.Triage != "" {
			t.Errorf("linked row = %v, want linked without triage", l)
		}
	})
}

// TestIngestHits sends cumulative hit counts of two instances in various
// orders, with duplicates: the finding's hits are the sum of each
// instance's largest total.
func TestIngestHits(t *testing.T) {
	type report struct {
		instance string
		hits     int
	}
	tests := []struct {
		name    string
		reports []report
		want    int64
	}{
		{"in order", []report{{"i1", 1}, {"i1", 5}, {"i2", 2}, {"i2", 7}}, 12},
		{"reordered", []report{{"i1", 5}, {"i2", 7}, {"i1", 1}, {"i2", 2}}, 12},
		{"repeated", []report{{"i1", 5}, {"i1", 5}, {"i2", 7}, {"i2", 7}, {"i1", 5}}, 12},
		{"one instance", []report{{"i1", 3}, {"i1", 9}, {"i1", 4}}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, Options{}, func(t *testing.T, s *Store) {
				ag := enrol(t, s, "h1")
				for i, r := range tt.reports {
					f := reached("GO-1", "Parse", t0.Add(time.Duration(i)*time.Second), "main.a", r.hits)
					mustIngest(t, s, ag.AgentID, batch(ag.AgentID, uint64(i+1), r.instance, "h-"+r.instance, "api", f))
				}
				got := rowOf(t, s, "api", "GO-1", "Parse", "main.a")
				if got.Hits != tt.want {
					t.Errorf("hits = %d, want %d", got.Hits, tt.want)
				}
				if got.FirstReached != t0.UnixNano() {
					t.Errorf("first_reached = %v, want the earliest first hit %d", got.FirstReached, t0.UnixNano())
				}
				if n := count(t, s, "sightings"); n != 2 && tt.name != "one instance" {
					t.Errorf("%d sightings, want one per instance", n)
				}
			})
		})
	}
}

func TestIngestStatusNeverDown(t *testing.T) {
	forEachStore(t, Options{Sinks: []string{"webhook"}}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		seq := uint64(0)
		send := func(f *report.Finding) IngestResult {
			seq++
			return mustIngest(t, s, ag.AgentID, batch(ag.AgentID, seq, "i1", "h1", "api", f))
		}
		f := reached("GO-1", "Parse", t0)
		res := send(linked("GO-1", "Parse"))
		if len(res.Reached) != 0 {
			t.Errorf("linked made %v reached", res.Reached)
		}
		res = send(f)
		row := rowOf(t, s, "api", "GO-1", "Parse", "")
		if len(res.Reached) != 1 || res.Reached[0] != row.ID || row.Status != "reached" {
			t.Fatalf("reached: %+v, row %v; want the row reached", res, row)
		}
		if row.Triage != StateAffected || row.TriageBy != "reach" {
			t.Errorf("triage of a newly reached finding = %q by %q, want affected by reach", row.Triage, row.TriageBy)
		}
		for _, again := range []*report.Finding{linked("GO-1", "Parse"), reached("GO-1", "Parse", t0.Add(time.Hour))} {
			if res := send(again); len(res.Reached) != 0 {
				t.Errorf("a finding reached before is reached anew: %v", res.Reached)
			}
		}
		got := rowOf(t, s, "api", "GO-1", "Parse", "")
		if got.Status != "reached" || got.FirstReached != t0.UnixNano() {
			t.Errorf("after linked and a later hit: %v, first_reached %d; want reached since %d", got, got.FirstReached, t0.UnixNano())
		}
		if n := count(t, s, "outbox"); n != 1 {
			t.Errorf("outbox has %d rows, want 1: one finding reached once, one sink", n)
		}
	})
}

func TestIngestTriageKept(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 1, "i1", "h1", "api", linked("GO-1", "Parse")))
		row := rowOf(t, s, "api", "GO-1", "Parse", "")
		if _, err := s.db.Exec(s.rebind(`UPDATE findings SET triage_state = ?, triage_by = ? WHERE id = ?`), StateUnderInvestigation, "alice", row.ID); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 2, "i1", "h1", "api", reached("GO-1", "Parse", t0)))
		if got := rowOf(t, s, "api", "GO-1", "Parse", ""); got.Triage != StateUnderInvestigation || got.TriageBy != "alice" {
			t.Errorf("triage after reached = %q by %q, want alice's under_investigation kept", got.Triage, got.TriageBy)
		}
	})
}

func TestIngestRejected(t *testing.T) {
	long := strings.Repeat("x", MaxString+1)
	tests := []struct {
		name   string
		change func(b *fleet.Batch)
		want   error
		says   string
	}{
		{"another agent", func(b *fleet.Batch) { b.AgentID = "agt_other" }, ErrForbidden, "agt_other"},
		{"seq 0", func(b *fleet.Batch) { b.Seq = 0 }, ErrInvalid, "seq"},
		{"no instance", func(b *fleet.Batch) { b.Observations[0].Instance = "" }, ErrInvalid, "instance is required"},
		{"no host", func(b *fleet.Batch) { b.Observations[0].Host = "" }, ErrInvalid, "host is required"},
		{"no binary", func(b *fleet.Batch) { b.Observations[0].Binary = nil }, ErrInvalid, "binary is required"},
		{"no binary path", func(b *fleet.Batch) { b.Observations[0].Binary.Path = "" }, ErrInvalid, "path is required"},
		{"unknown status", func(b *fleet.Batch) { b.Observations[0].Binary.Findings[1].Symbols[0].Status = "pwned" }, ErrInvalid, `finding "GO-2": symbol`},
		{"unknown finding status", func(b *fleet.Batch) { b.Observations[0].Binary.Findings[1].Status = "" }, ErrInvalid, `finding "GO-2"`},
		{"negative line", func(b *fleet.Batch) { b.Observations[0].Binary.Findings[0].Symbols[0].Callsites[0].Line = -1 }, ErrInvalid, "callsite 0: line -1"},
		{"long string", func(b *fleet.Batch) { b.Observations[0].Binary.Findings[0].Summary = long }, ErrInvalid, "summary"},
		{"NUL", func(b *fleet.Batch) { b.Observations[0].Host = "h\x00" }, ErrInvalid, "NUL"},
		{"not UTF-8", func(b *fleet.Batch) { b.Observations[0].Service = "\xff" }, ErrInvalid, "UTF-8"},
		{"deep stack", func(b *fleet.Batch) {
			sym := b.Observations[0].Binary.Findings[0].Symbols[0]
			sym.Stack = make([]report.Frame, MaxFrames+1)
		}, ErrInvalid, "stack"},
		{"null finding", func(b *fleet.Batch) { b.Observations[0].Binary.Findings[1] = nil }, ErrInvalid, "null finding"},
		{"huge hits", func(b *fleet.Batch) { b.Observations[0].Binary.Findings[0].Symbols[0].Callsites[0].Hits = 1 << 63 }, ErrInvalid, "hits"},
		{"year 1", func(b *fleet.Batch) {
			var t time.Time
			b.Observations[0].Binary.Findings[0].Symbols[0].FirstSeen = &t
		}, ErrInvalid, "out of range"},
		{"too many rows", func(b *fleet.Batch) {
			for i := range 3 {
				f := &report.Finding{OSV: fmt.Sprint("GO-X", i), Module: "m", Status: report.Linked}
				for range MaxRows / 2 / MaxList * MaxList {
					f.Symbols = append(f.Symbols, &report.Symbol{Package: "p", Name: "F", Status: report.Linked})
				}
				b.Observations[0].Binary.Findings = append(b.Observations[0].Binary.Findings, f)
			}
		}, ErrInvalid, "finding updates"},
		// The second observation is the bad one: the first is not stored
		// either.
		{"second observation", func(b *fleet.Batch) {
			o := b.Observations[0]
			o.Binary = &report.Binary{Path: "/x", Findings: []*report.Finding{{OSV: "GO-3", Module: "m", Status: "nope"}}}
			b.Observations = append(b.Observations, o)
		}, ErrInvalid, "observation 1"},
	}
	forEachStore(t, Options{Sinks: []string{"otlp"}}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		before := counts(t, s)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := batch(ag.AgentID, 1, "i1", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 1), linked("GO-2", "Compose"))
				tt.change(b)
				_, err := s.Ingest(context.Background(), ag.AgentID, b)
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
					t.Errorf("Ingest = %v, want %v saying %q", err, tt.want, tt.says)
				}
				if after := counts(t, s); !maps.Equal(before, after) {
					t.Errorf("rows after a rejected batch %v, before %v", after, before)
				}
			})
		}
		// The batch itself was fine: it is stored once its seq is given.
		b := batch(ag.AgentID, 1, "i1", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 1), linked("GO-2", "Compose"))
		if res := mustIngest(t, s, ag.AgentID, b); res.Updates != 2 {
			t.Errorf("valid batch after rejected ones: %+v", res)
		}
	})
}

func TestIngestRevokedAgent(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		if err := s.RevokeAgent(context.Background(), ag.AgentID); err != nil {
			t.Fatal(err)
		}
		_, err := s.Ingest(context.Background(), ag.AgentID, batch(ag.AgentID, 1, "i1", "h1", "api", linked("GO-1", "F")))
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("batch of a revoked agent: %v, want ErrUnauthorized", err)
		}
		if n := count(t, s, "batches"); n != 0 {
			t.Errorf("%d batches stored for a revoked agent", n)
		}
	})
}

// TestIngestConcurrent has 8 agents send overlapping findings at once:
// every batch is stored, and the hits are the sums.
func TestIngestConcurrent(t *testing.T) {
	forEachStore(t, Options{Sinks: []string{"otlp"}}, func(t *testing.T, s *Store) {
		const agents, batches = 8, 5
		var ids [agents]string
		for i := range ids {
			ids[i] = enrol(t, s, fmt.Sprintf("h%d", i)).AgentID
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*agents*batches)
		for a := range agents {
			wg.Go(func() {
				for seq := 1; seq <= batches; seq++ {
					var fs []*report.Finding
					for v := range 20 {
						fs = append(fs, reached(fmt.Sprintf("GO-%d", v), "Parse", t0, "main.a", seq, "main.b", 1))
					}
					b := batch(ids[a], uint64(seq), fmt.Sprintf("inst-%d", a), fmt.Sprintf("h%d", a), "api", fs...)
					// Each batch goes twice, as after a timeout.
					for range 2 {
						if _, err := s.Ingest(context.Background(), ids[a], b); err != nil {
							errs <- err
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := count(t, s, "batches"); n != agents*batches {
			t.Errorf("%d batches stored, want %d", n, agents*batches)
		}
		if n := count(t, s, "findings"); n != 40 {
			t.Errorf("%d findings, want 20 OSVs x 2 callsites", n)
		}
		for v := range 20 {
			if r := rowOf(t, s, "api", fmt.Sprintf("GO-%d", v), "Parse", "main.a"); r.Hits != agents*batches {
				t.Errorf("GO-%d hits %d, want %d: each agent's largest total, summed", v, r.Hits, agents*batches)
			}
		}
		if n := count(t, s, "outbox"); n != 40 {
			t.Errorf("outbox has %d rows, want each of 40 findings once", n)
		}
	})
}

// TestIngestOtherAgentsInstance has an agent report hits under an
// instance name another agent uses: the other agent's sighting is left
// alone, and the finding's hits do not grow from it.
func TestIngestOtherAgentsInstance(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		a, b := enrol(t, s, "h1"), enrol(t, s, "h2")
		mustIngest(t, s, a.AgentID, batch(a.AgentID, 1, "shared", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 5)))
		mustIngest(t, s, b.AgentID, batch(b.AgentID, 1, "shared", "h2", "api", reached("GO-1", "Parse", t0, "main.a", 1000)))
		if r := rowOf(t, s, "api", "GO-1", "Parse", "main.a"); r.Hits != 5 {
			t.Errorf("hits = %d, want agent a's 5 only", r.Hits)
		}
		if n := count(t, s, "sightings", "host = 'h1' AND hits = 5"); n != 1 {
			t.Errorf("agent a's sighting changed")
		}
		// Agent a's own next total still counts.
		mustIngest(t, s, a.AgentID, batch(a.AgentID, 2, "shared", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 7)))
		if r := rowOf(t, s, "api", "GO-1", "Parse", "main.a"); r.Hits != 7 {
			t.Errorf("hits = %d, want 7", r.Hits)
		}
	})
}

// TestIngestAgentState: what an agent says of itself comes from its
// newest batch, whatever order batches arrive in.
func TestIngestAgentState(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		b5 := batch(ag.AgentID, 5, "i", "h1", "api")
		b5.Agent.Processes, b5.Applied = 5, &fleet.Applied{Version: 3, Error: "target GO-X unknown"}
		b4 := batch(ag.AgentID, 4, "i", "h1", "api")
		b4.Agent.Processes, b4.Applied = 4, &fleet.Applied{Version: 2}
		mustIngest(t, s, ag.AgentID, b5)
		mustIngest(t, s, ag.AgentID, b4)
		a, err := s.AgentByToken(ctx, ag.Token)
		if err != nil {
			t.Fatal(err)
		}
		if a.LastSeq != 5 || a.Processes != 5 || a.AppliedVersion != 3 || a.AppliedError != "target GO-X unknown" || a.AppliedAt == nil {
			t.Errorf("agent = %+v, want batch 5's state", a)
		}
	})
}

// TestIngestSameAgentConcurrent sends one agent's batches all at once to
// two stores on one database (as retries through a load balancer would):
// the hits are the instance's largest total, not a sum of increments
// computed from stale reads.
func TestIngestSameAgentConcurrent(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			stores := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
			ag := enrol(t, stores[0], "h1")
			const n = 16
			var wg sync.WaitGroup
			for seq := 1; seq <= n; seq++ {
				wg.Go(func() {
					f := reached("GO-1", "Parse", t0, "main.a", seq, "main.b", 2*seq)
					b := batch(ag.AgentID, uint64(seq), "i1", "h1", "api", f, linked("GO-2", "F"))
					if _, err := stores[seq%2].Ingest(context.Background(), ag.AgentID, b); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			a, b := rowOf(t, stores[0], "api", "GO-1", "Parse", "main.a"), rowOf(t, stores[0], "api", "GO-1", "Parse", "main.b")
			if a.Hits != n || b.Hits != 2*n {
				t.Errorf("hits %d and %d, want the largest totals %d and %d", a.Hits, b.Hits, n, 2*n)
			}
			if a, err := stores[1].AgentByToken(context.Background(), ag.Token); err != nil || a.LastSeq != n {
				t.Errorf("agent's last seq = %v (%v), want %d", a, err, n)
			}
		})
	}
}

// TestIngestLastSeen: last_seen moves forward in steps of lastSeenStep,
// and a row whose hits grow gets them whatever its last_seen.
func TestIngestLastSeen(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		base := time.Now().Add(time.Hour)
		send := func(seq uint64, last time.Time, hits int) storedRow {
			t.Helper()
			f := reached("GO-1", "Parse", t0, "main.a", hits)
			f.Symbols[0].LastSeen = &last
			mustIngest(t, s, ag.AgentID, batch(ag.AgentID, seq, "i1", "h1", "api", f))
			return rowOf(t, s, "api", "GO-1", "Parse", "main.a")
		}
		r := send(1, base, 1)
		if r.LastSeen != base.UnixNano() {
			t.Fatalf("last_seen %d, want %d", r.LastSeen, base.UnixNano())
		}
		if r = send(2, base.Add(lastSeenStep/2), 2); r.LastSeen != base.UnixNano() || r.Hits != 2 {
			t.Errorf("half a step later: last_seen +%v, hits %d; want unchanged, 2", time.Duration(r.LastSeen-base.UnixNano()), r.Hits)
		}
		later := base.Add(2 * lastSeenStep)
		if r = send(3, later, 2); r.LastSeen != later.UnixNano() || r.Hits != 2 {
			t.Errorf("two steps later: last_seen +%v, hits %d; want +%v, 2", time.Duration(r.LastSeen-base.UnixNano()), r.Hits, 2*lastSeenStep)
		}
		if r = send(4, base, 3); r.LastSeen != later.UnixNano() || r.Hits != 3 {
			t.Errorf("an older last_seen: last_seen +%v, hits %d; want +%v, 3", time.Duration(r.LastSeen-base.UnixNano()), r.Hits, 2*lastSeenStep)
		}
	})
}

// TestIngestOneShotRemainder: a one-shot report records only the first
// hit's callsite, so a symbol can have more hits than its callsites. The
// hits without a recorded callsite go to the row without one: a symbol's
// rows add up to its hits, as in the report.
func TestIngestOneShotRemainder(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		f := reached("GO-1", "Parse", t0, "main.a", 1)
		f.Symbols[0].Hits = 8
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 1, "i1", "h1", "api", f))
		if got := rowOf(t, s, "api", "GO-1", "Parse", "main.a"); got.Hits != 1 || got.Status != "reached" {
			t.Errorf("callsite row = %v, want 1 hit, reached", got)
		}
		if got := rowOf(t, s, "api", "GO-1", "Parse", ""); got.Hits != 7 || got.Status != "reached" {
			t.Errorf("row without callsite = %v, want the other 7 hits, reached", got)
		}
		// The instance's next report, with more hits: still adds up.
		f.Symbols[0].Hits = 10
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 2, "i1", "h1", "api", f))
		if got := rowOf(t, s, "api", "GO-1", "Parse", ""); got.Hits != 9 {
			t.Errorf("row without callsite after 10 hits = %v, want 9", got)
		}
	})
}

// TestIngestKeepsKnownHostname: a batch whose sender could not read its
// host name (or version) leaves the stored one alone.
func TestIngestKeepsKnownHostname(t *testing.T) {
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		ag := enrol(t, s, "h1")
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 1, "i1", "web-1", "api"))
		b := batch(ag.AgentID, 2, "i1", "web-1", "api")
		b.Agent.Hostname, b.Agent.ReachVersion, b.Agent.Probes = "", "", 7
		mustIngest(t, s, ag.AgentID, b)
		agents, err := s.Agents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(agents) != 1 || agents[0].Hostname != "web-1" || agents[0].ReachVersion != "v0.test" || agents[0].Probes != 7 {
			t.Errorf("agents = %+v, want web-1 and v0.test kept, 7 probes from the newer batch", agents)
		}
	})
}
