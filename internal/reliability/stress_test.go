package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestStress attaches to and detaches from two busy programs over and
// over (a plain and a stripped PIE build of testdata/stress: 64 goroutines
// calling the vulnerable functions through entry and inlined probes, under
// heavy allocation and deep recursion), changing the targets while
// attached, in one-shot and count mode. The programs must compute exactly
// what they compute unobserved, exit 0, and keep no probe; every report
// must be complete. REACH_RELIABILITY_CYCLES sets the number of cycles.
func TestStress(t *testing.T) {
	testprog.RequireRoot(t)
	cycles := envInt(t, "REACH_RELIABILITY_CYCLES", 50)
	variants := []testprog.Variant{testprog.Plain, testprog.StrippedPIE}
	var (
		paths []string
		procs []*stressProc
		sites [][]probeSite
		refs  []string
	)
	pids := map[string][]int{}
	for _, v := range variants {
		path := buildStress(t, v)
		paths = append(paths, path)
		refs = append(refs, referenceChecksum(t, path))
		sites = append(sites, probeSites(t, path))
	}
	for _, path := range paths {
		p := startStress(t, path)
		procs = append(procs, p)
		pids[path] = []int{p.pid()}
	}
	events := uprobeEvents()

	all := observe.SelectAll()
	digest, err := observe.NewSelection("GO-2099-0101")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := observe.NewSelection("example.com/hazard.Leaf", "example.com/hazard.Mix")
	if err != nil {
		t.Fatal(err)
	}
	sets := []observe.Selection{all, digest, leaf}
	db := fixtureDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	var reached, counted int
	for i := 0; i < cycles; i++ {
		mode := probe.OneShot
		if i%2 == 1 {
			mode = probe.Count
		}
		first, second := sets[i%3], sets[(i+1)%3]
		r, err := watchdog(60*time.Second, func() (*report.Report, error) {
			return cycle(db, procs, mode, first, second, rng)
		})
		if err != nil {
			t.Fatalf("cycle %d (%s, %s then %s): %v", i, mode, first, second, err)
		}
		st, err := roundTrip(r, pids)
		if err != nil {
			t.Fatalf("cycle %d: report: %v", i, err)
		}
		reached += st.reached
		counted += st.counted
		for j, p := range procs {
			if !p.alive() {
				t.Fatalf("cycle %d: stress process %d exited while observed", i, p.pid())
			}
			if n := armedSites(t, p.pid(), paths[j], sites[j]); n > 0 {
				t.Fatalf("cycle %d: %d probe sites still hold int3 after Close", i, n)
			}
		}
	}
	elapsed := time.Since(start)
	for j, p := range procs {
		checkPristine(t, p.pid(), paths[j], sites[j], "after the cycles")
		sums := p.stop(2 * time.Minute)
		if len(sums) == 0 {
			t.Fatalf("%s: no round finished", paths[j])
		}
		for k, s := range sums {
			if s != refs[j] {
				t.Fatalf("%s round %d: checksum %s, want %s as unobserved", paths[j], k+1, s, refs[j])
			}
		}
		t.Logf("%s (%s): %d rounds, every checksum %s as unobserved", variants[j].Name, paths[j], len(sums), refs[j])
	}
	if after := uprobeEvents(); after != events {
		t.Errorf("uprobe_events changed:\nbefore: %s\nafter: %s", events, after)
	}
	if reached == 0 {
		t.Errorf("no symbol reached in %d cycles: the probes saw nothing", cycles)
	}
	t.Logf("%d attach/detach cycles on %d processes in %s (%s per cycle), %d reached symbols reported (%d known only from the counters, without first hit)", cycles, len(procs), elapsed.Round(time.Millisecond), (elapsed / time.Duration(cycles)).Round(time.Microsecond), reached, counted)
	figure(t, "cycles", cycles)
	figure(t, "cycle_reports", cycles)
}

// cycle opens a session, attaches to every process with the first target
// set, switches to the second one, closes the session and returns its
// report.
func cycle(db analysis.Entries, procs []*stressProc, mode probe.Mode, first, second observe.Selection, rng *rand.Rand) (*report.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := observe.New(ctx, db, observe.Options{
		Mode:    mode,
		Targets: first,
		Report:  report.Report{Mode: "attach", Tool: report.Tool{Name: "reach", Version: "test"}},
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for _, p := range procs {
		if err := s.Add(ctx, p.pid()); err != nil {
			return nil, fmt.Errorf("add %d: %w", p.pid(), err)
		}
	}
	time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
	if err := s.SetTargets(ctx, second); err != nil {
		return nil, fmt.Errorf("set targets %s: %w", second, err)
	}
	time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	return s.Report(ctx)
}

var errHung = errors.New("hung")

// watchdog runs f and fails when it takes longer than limit: a hang.
func watchdog[T any](limit time.Duration, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(limit):
		var zero T
		return zero, fmt.Errorf("no answer within %s: %w", limit, errHung)
	}
}
