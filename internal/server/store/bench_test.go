package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
)

// BenchmarkIngest has agents send batches at once, as a fleet does: 16
// agents over 4 services (agents of a service report the same binary, so
// they update the same finding rows), each batch 260 finding updates (50
// OSVs x 5 symbols, 10 of them reached from 2 callsites), hits growing
// from batch to batch ("steady": most rows repeat the batch before;
// "changing": every row's hits grow). It reports finding updates stored
// per second, and the p50 and p99 of Ingest's latency.
func BenchmarkIngest(b *testing.B) {
	for _, d := range dialects {
		for _, mode := range []string{"steady", "changing"} {
			b.Run(d.name+"/"+mode, func(b *testing.B) {
				benchIngest(b, d.dsn(b), mode == "changing")
			})
		}
	}
}

func benchIngest(b *testing.B, dsn string, changing bool) {
	s := openTest(b, dsn, Options{Sinks: []string{"otlp"}})
	const agents = 16
	ids := make([]string, agents)
	for i := range ids {
		ids[i] = enrol(b, s, fmt.Sprintf("host-%d", i)).AgentID
	}
	var next, updates atomic.Int64
	var mu sync.Mutex
	var took []time.Duration
	b.SetParallelism(8) // 8 x GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine is an agent (two share one when there are more
		// than 16, with seqs of their own).
		g := next.Add(1) - 1
		a := int(g) % agents
		seq := uint64(g) << 32
		for pb.Next() {
			seq++
			batch := benchBatch(ids[a], seq, a, changing)
			t := time.Now()
			res, err := s.Ingest(context.Background(), ids[a], batch)
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			took = append(took, time.Since(t))
			mu.Unlock()
			updates.Add(int64(res.Updates))
		}
	})
	b.ReportMetric(float64(updates.Load())/time.Since(start).Seconds(), "updates/s")
	slices.Sort(took)
	if len(took) > 0 {
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// benchBatch is agent a's batch seq: 260 finding updates of service
// a%4, of which the 20 reached rows change (their hits grow); changing:
// 250 finding updates, every one reached from a callsite whose hits grow.
func benchBatch(agent string, seq uint64, a int, changing bool) *fleet.Batch {
	service := fmt.Sprintf("svc-%d", a%4)
	var fs []*report.Finding
	for v := range 50 {
		f := &report.Finding{OSV: fmt.Sprintf("GO-2026-%04d", v), Summary: "a vulnerability", Aliases: []string{fmt.Sprintf("CVE-2026-%04d", v)},
			Module: "golang.org/x/net", Version: "v0.1.0", FixedVersion: "v0.2.0", Status: report.Linked}
		for k := range 5 {
			sym := &report.Symbol{Package: "golang.org/x/net/http2", Name: fmt.Sprintf("F%d", k), Status: report.Linked}
			if changing {
				first := t0
				sym.Status, sym.FirstSeen, sym.LastSeen, sym.Hits = report.Reached, &first, &first, seq
				sym.Callsites = []*report.Callsite{{Function: "main.handle", File: "main.go", Line: 10 + k, Hits: seq}}
				f.Status = report.Reached
			} else if k == 0 && v%5 == 0 {
				// Reached from two callsites: two rows.
				first := t0
				sym.Status, sym.FirstSeen, sym.LastSeen = report.Reached, &first, &first
				sym.Callsites = []*report.Callsite{
					{Function: "main.handle", File: "main.go", Line: 10, Hits: seq},
					{Function: "main.serve", File: "main.go", Line: 20, Hits: seq},
				}
				sym.Hits = 2 * seq
				sym.Stack = []report.Frame{{Function: "golang.org/x/net/http2.F0", File: "h2.go", Line: 1}, {Function: "main.handle", File: "main.go", Line: 10}}
				f.Status = report.Reached
			}
			f.Symbols = append(f.Symbols, sym)
		}
		fs = append(fs, f)
	}
	return batch(agent, seq, agent+"/inst", "host", service, fs...)
}
