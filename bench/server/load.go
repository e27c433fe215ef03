package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
	"github.com/reach-sca/reach/internal/fleet"
)

// ledger is what the benchmark sent one server and the server
// acknowledged: what its store must hold afterwards.
type ledger struct {
	mu       sync.Mutex
	binaries map[int]int // binaries sent: index -> finding rows
	batches  int         // batches acknowledged as new
	updates  int64       // finding rows in them
	// written is the sum of the answers' Updates: the rows the server
	// wrote (it may skip rows a batch does not change).
	written  int64
	seedHits uint64 // hits of the seeding instances (k = 1 each)
	// Faults seen in answers.
	updateMismatch  int // batches whose answer's Updates is more than their rows
	unexpectedDup   int // new batches answered as duplicates
	duplicates      int // batches sent twice on purpose
	duplicatesNotOK int // of them, those not answered as duplicates
}

func newLedger() *ledger { return &ledger{binaries: map[int]int{}} }

// acked records a batch acknowledged with the binaries in specs; retried
// is whether an attempt before the one answered may have stored it.
func (l *ledger) acked(resp fleet.BatchResponse, retried bool, specs []*binarySpec) {
	rows := rows(specs)
	l.mu.Lock()
	defer l.mu.Unlock()
	if resp.Duplicate && !retried {
		l.unexpectedDup++
		return
	}
	l.batches++
	l.updates += int64(rows)
	for _, s := range specs {
		l.binaries[s.index] = s.rows
	}
	if !resp.Duplicate {
		l.written += int64(resp.Updates)
		if resp.Updates > rows || resp.Updates < 0 {
			l.updateMismatch++
		}
	}
}

// rows returns the distinct finding rows sent.
func (l *ledger) rows() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.binaries {
		n += r
	}
	return n
}

// observation is spec as agent a observes it in instance, with the hit
// totals after k batches.
func observation(u *universe, a *agent, instance string, spec *binarySpec, k uint64) fleet.Observation {
	return fleet.Observation{
		Instance:    instance,
		Host:        a.host,
		Service:     spec.service,
		Environment: spec.environment,
		Labels: map[string]string{
			"k8s.namespace.name": spec.environment,
			"k8s.pod.name":       fmt.Sprintf("%s-%d", spec.service, spec.index),
			"container.id":       fmt.Sprintf("%064x", spec.index),
		},
		Mode:    "agent",
		PIDs:    []int{1000 + spec.index},
		Started: u.start,
		Binary:  withHits(spec.bin, k, time.Now().UTC()),
	}
}

// load is the steady load: every agent reports its own binaries again and
// again, with growing hit counts (updates of the same finding rows after
// its first batch).
type load struct {
	u           *universe
	perAgent    int // binaries per agent
	concurrency int // requests in flight
	specs       map[int]*binarySpec
}

// agentSpecs returns agent n's binaries.
func (l *load) agentSpecs(n int) []*binarySpec {
	specs := make([]*binarySpec, l.perAgent)
	for j := range specs {
		i := n*l.perAgent + j
		if l.specs[i] == nil {
			l.specs[i] = l.u.binary(i)
		}
		specs[j] = l.specs[i]
	}
	return specs
}

// prepare makes every agent's binaries before a round (not timed).
func (l *load) prepare(agents []*agent) {
	for _, a := range agents {
		l.agentSpecs(a.n)
	}
}

// round is what one round of load measured.
type round struct {
	updates int64
	batches int
	took    time.Duration
	stats   *sendStats
	// CPU time used meanwhile by the reach server process and by this
	// one, in percent of the round's wall time (100: one core).
	serverCPU, selfCPU float64
}

func (r round) perSecond() float64 { return float64(r.updates) / r.took.Seconds() }

// tally counts a round's batches, in its workers, and keeps the first
// error, which ends the round.
type tally struct {
	mu      sync.Mutex
	updates int64
	batches int
	err     error
	cancel  context.CancelFunc
}

// add counts an acknowledged batch of specs and returns the batches so
// far.
func (t *tally) add(specs []*binarySpec) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.updates += int64(rows(specs))
	t.batches++
	return t.batches
}

// fail keeps err, if first, and ends the round.
func (t *tally) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
	}
	t.cancel()
}

// workers runs work in l.concurrency goroutines, worker w with every
// l.concurrency-th agent from the w-th, and returns what they tallied.
func (l *load) workers(ctx context.Context, agents []*agent, work func(ctx context.Context, mine []*agent, t *tally)) (round, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &tally{cancel: cancel}
	cpu := startCPU(agents[0].srv)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range min(l.concurrency, len(agents)) {
		var mine []*agent
		for i := w; i < len(agents); i += l.concurrency {
			mine = append(mine, agents[i])
		}
		wg.Go(func() { work(ctx, mine, t) })
	}
	wg.Wait()
	took := time.Since(start)
	if t.err != nil {
		return round{}, t.err
	}
	rd := round{updates: t.updates, batches: t.batches, took: took}
	rd.serverCPU, rd.selfCPU = cpu.stop(took)
	return rd, nil
}

func rows(specs []*binarySpec) int {
	n := 0
	for _, s := range specs {
		n += s.rows
	}
	return n
}

// run loads srv for d with agents' batches, concurrency at a time, at
// most rate batches per second (0: as fast as the server answers). Every
// 50th batch is sent a second time, which must change nothing.
func (l *load) run(ctx context.Context, agents []*agent, led *ledger, d time.Duration, rate float64) (round, error) {
	st, dupStats := &sendStats{}, &sendStats{}
	var permits chan struct{}
	if rate > 0 {
		permits = make(chan struct{})
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go pace(pctx, permits, rate)
	}
	deadline := time.Now().Add(d)
	rd, err := l.workers(ctx, agents, func(ctx context.Context, mine []*agent, t *tally) {
		for i := 0; time.Now().Before(deadline); i++ {
			if permits != nil {
				select {
				case <-permits:
				case <-ctx.Done():
					return
				}
			}
			a := mine[i%len(mine)]
			specs := l.agentSpecs(a.n)
			obs := make([]fleet.Observation, len(specs))
			for j, s := range specs {
				obs[j] = observation(l.u, a, fmt.Sprintf("%s/%d", a.host, s.index), s, a.k+1)
			}
			resp, retried, err := a.send(ctx, obs, nil, st)
			if err != nil {
				t.fail(err)
				return
			}
			a.k++
			led.acked(resp, retried, specs)
			if t.add(specs)%50 == 0 {
				if err := resendCheck(ctx, a, led, dupStats); err != nil {
					t.fail(err)
					return
				}
			}
		}
	})
	rd.stats = st
	return rd, err
}

// cpuMeter reads the CPU time of a server (with, for PostgreSQL, the
// backends serving its database) and of this process.
type cpuMeter struct {
	pid              int
	db               string // PostgreSQL's database, or ""
	server, self     time.Duration
	serverOK, selfOK bool
	backends         map[int]time.Duration
}

func startCPU(srv *server) *cpuMeter {
	m := &cpuMeter{pid: srv.cmd.Process.Pid, db: srv.database()}
	m.server, m.self, m.serverOK, m.selfOK = readCPU(m.pid)
	m.backends = backendsCPU(m.db)
	return m
}

// stop returns the CPU used since startCPU, in percent of wall; -1 for
// what could not be read.
func (m *cpuMeter) stop(wall time.Duration) (server, self float64) {
	s, me, sok, mok := readCPU(m.pid)
	for pid, t := range backendsCPU(m.db) {
		s += t - m.backends[pid] // a backend started meanwhile counts from 0
	}
	server, self = -1, -1
	if sok && m.serverOK {
		server = 100 * float64(s-m.server) / float64(wall)
	}
	if mok && m.selfOK {
		self = 100 * float64(me-m.self) / float64(wall)
	}
	return server, self
}

// backendsCPU returns the CPU time of each PostgreSQL backend process
// serving database db (its title names the database), none for db "".
func backendsCPU(db string) map[int]time.Duration {
	out := map[int]time.Duration{}
	if db == "" {
		return out
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		title, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !bytes.HasPrefix(title, []byte("postgres: ")) || !bytes.Contains(title, []byte(" "+db+" ")) {
			continue
		}
		if t, err := harness.CPUTime(pid); err == nil {
			out[pid] = t
		}
	}
	return out
}

func readCPU(pid int) (server, self time.Duration, serverOK, selfOK bool) {
	server, err := harness.CPUTime(pid)
	serverOK = err == nil
	self, err = harness.CPUTime(os.Getpid())
	selfOK = err == nil
	return
}

// resendCheck sends a's last batch again and records whether the server
// said it is a duplicate.
func resendCheck(ctx context.Context, a *agent, led *ledger, st *sendStats) error {
	resp, err := a.resend(ctx, st)
	if err != nil {
		return err
	}
	led.mu.Lock()
	led.duplicates++
	if !resp.Duplicate || resp.Updates != 0 {
		led.duplicatesNotOK++
	}
	led.mu.Unlock()
	return nil
}

// pace sends rate permits per second on permits until ctx is done.
func pace(ctx context.Context, permits chan<- struct{}, rate float64) {
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case permits <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

// seed sends new binaries, each once in an instance of its own, until the
// server holds at least target finding rows. It returns the rows sent and
// how long it took.
func (l *load) seed(ctx context.Context, agents []*agent, led *ledger, target, next int) (round, error) {
	const perBatch = 4
	work := make(chan []*binarySpec)
	st := &sendStats{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(work)
		for have := led.rows(); have < target; {
			g := make([]*binarySpec, 0, perBatch)
			for len(g) < perBatch && have < target {
				s := l.u.binary(next)
				next++
				g = append(g, s)
				have += s.rows
			}
			select {
			case work <- g:
			case <-ctx.Done():
				return
			}
		}
	}()
	rd, err := l.workers(ctx, agents, func(ctx context.Context, mine []*agent, t *tally) {
		i := 0
		for g := range work {
			a := mine[i%len(mine)]
			i++
			obs := make([]fleet.Observation, len(g))
			var hits uint64
			for j, s := range g {
				obs[j] = observation(l.u, a, fmt.Sprintf("seed/%d", s.index), s, 1)
				hits += s.weight
			}
			resp, retried, err := a.send(ctx, obs, nil, st)
			if err != nil {
				t.fail(err)
				cancel()
				return
			}
			led.acked(resp, retried, g)
			led.mu.Lock()
			led.seedHits += hits
			led.mu.Unlock()
			t.add(g)
		}
	})
	rd.stats = st
	return rd, err
}
