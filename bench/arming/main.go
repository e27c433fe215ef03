// Command arming measures how fast reach arms and disarms probes as the
// number of vulnerable functions grows: generated programs with 10, 100,
// 1,000 and 10,000 distinct non-inlinable vulnerable functions, and a
// generated database listing them all.
//
// For each size it measures, in rounds, with medians:
//
//   - attaching to a running process (observe.Session.Add), split into
//     binary analysis and arming (timed around the probe engine's Arm
//     calls), and removing every probe (SetTargets to none);
//   - the whole `reach attach` command, from its start to its "observing"
//     message, and from SIGINT to its exit with every probe removed;
//   - one-shot disarm latency: the program calls one vulnerable function
//     and times, from the call, when reach has recorded the hit and when the
//     function's probe is gone from its code.
//
// The program itself checks that its probes are there: a uprobe puts an
// INT3 into the process's copy of the code, and takes it out when removed.
//
//	go run ./bench/arming [-sizes 10,100,1000,10000] [-rounds R] [-hits H] [-v]
//
// It needs root.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

func main() {
	probe.RunKeeperIfRequested() // the probe engine's keeper is this binary
	log.SetFlags(0)
	log.SetPrefix("bench/arming: ")
	sizes := flag.String("sizes", "10,100,1000,10000", "comma-separated numbers of vulnerable functions")
	rounds := flag.Int("rounds", 3, "rounds per size")
	hits := flag.Int("hits", 3, "functions hit per round, for the disarm latency")
	verbose := flag.Bool("v", false, "log reach's debug messages to standard error")
	flag.Parse()
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			log.Fatalf("-sizes: %q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	if *rounds <= 0 || *hits <= 0 {
		log.Fatal("-rounds and -hits must be positive")
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := run(context.Background(), ns, *rounds, *hits, logger); err != nil {
		log.Fatal(err)
	}
}

// result holds one size's samples.
type result struct {
	n              int
	start, add     []time.Duration // session start, Add (analysis and arming)
	arm            []time.Duration // the arming part of Add
	unarm          []time.Duration // SetTargets to none: every probe but the hit ones
	cliUp, cliDown []time.Duration
	seen, gone     []time.Duration // per hit: from the call to the hit recorded, to the probe gone
}

func run(ctx context.Context, sizes []int, rounds, hits int, logger *slog.Logger) error {
	if err := harness.CheckRepoRoot(); err != nil {
		return err
	}
	if err := harness.CheckRoot(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "reach-bench-arming-")
	if err != nil {
		return err
	}
	defer testprog.RemoveAll(tmp)
	reach, err := harness.BuildReach(ctx, tmp)
	if err != nil {
		return err
	}
	fmt.Printf("one probe group per function (its PUSH RBP); %d rounds per size, medians; %d one-shot hits per round\n\n", rounds, hits)
	var results []*result
	for _, n := range sizes {
		if hits > n {
			return fmt.Errorf("-hits %d: more than the %d functions of size %d", hits, n, n)
		}
		fx, err := generate(ctx, filepath.Join(tmp, strconv.Itoa(n)), n)
		if err != nil {
			return err
		}
		res := &result{n: n}
		for round := range rounds {
			if err := sessionRound(ctx, fx, res, round, hits, logger); err != nil {
				return fmt.Errorf("%d functions: %w", n, err)
			}
			if err := cliRound(ctx, reach, fx, res, filepath.Join(tmp, "report.json")); err != nil {
				return fmt.Errorf("%d functions, reach attach: %w", n, err)
			}
		}
		results = append(results, res)
	}
	printResults(results)
	return nil
}

// maxSites is the -max-sites (Options.MaxSites) for n functions.
func maxSites(n int) int { return max(observe.DefaultMaxSites, 2*n) }

// sessionRound attaches an observe session to a process of the fixture,
// hits some functions, then takes every other probe away (SetTargets).
func sessionRound(ctx context.Context, fx *fixture, res *result, round, hits int, logger *slog.Logger) error {
	a, err := startApp(fx.exe)
	if err != nil {
		return err
	}
	defer a.stop()
	db, err := vulndb.New(fx.db, vulndb.Options{})
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		seen = map[string]time.Time{} // "pid symbol" -> when the session recorded its hit
	)
	t0 := time.Now()
	eng, err := probe.New(ctx, probe.Options{Logger: logger})
	if err != nil {
		return err
	}
	timed := &timedEngine{Engine: eng}
	s, err := observe.New(ctx, db, observe.Options{
		Logger:   logger,
		Report:   report.Report{Mode: "attach"},
		MaxSites: maxSites(fx.n),
		Targets:  observe.SelectAll(),
		Engine:   timed,
		OnHit: func(ev observe.Event) {
			now := time.Now()
			mu.Lock()
			seen[fmt.Sprint(ev.PID, " ", ev.Symbol)] = now
			mu.Unlock()
		},
	})
	if err != nil {
		eng.Close()
		return err
	}
	defer s.Close()
	check := func(when string, want int) error {
		if k, err := a.armed(); err != nil || k != want {
			return fmt.Errorf("process %d: %d functions carry a probe %s, want %d (%v)", a.pid(), k, when, want, err)
		}
		return nil
	}
	t1 := time.Now()
	if err := s.Add(ctx, a.pid()); err != nil {
		return fmt.Errorf("%w (after %s; %s)", err, time.Since(t1), a.state())
	}
	t2 := time.Now()
	if err := check("after Add", fx.n); err != nil {
		return err
	}
	first, last, calls := timed.span()
	if calls == 0 {
		return errors.New("Add armed nothing")
	}
	res.start = append(res.start, t1.Sub(t0))
	res.add = append(res.add, t2.Sub(t1))
	res.arm = append(res.arm, last.Sub(first))

	for k := range hits {
		i := (round*hits*7919 + k) % fx.n // distinct within a round
		called, gone, err := a.hit(i)
		if err != nil {
			return err
		}
		key := fmt.Sprint(a.pid(), " F", i)
		var at time.Time
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			at = seen[key]
			mu.Unlock()
			if !at.IsZero() {
				break
			}
		}
		if at.IsZero() {
			return fmt.Errorf("process %d: the session recorded no hit of F%d 2s after its probe was gone", a.pid(), i)
		}
		res.seen = append(res.seen, at.Sub(called))
		res.gone = append(res.gone, gone)
	}
	if err := check(fmt.Sprintf("after %d one-shot hits", hits), fx.n-hits); err != nil {
		return err
	}

	t3 := time.Now()
	if err := s.SetTargets(ctx, observe.Selection{}); err != nil {
		return err
	}
	res.unarm = append(res.unarm, time.Since(t3))
	if err := check("after SetTargets(none)", 0); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	r, err := s.Report(ctx)
	if err != nil {
		return err
	}
	if got := reached(r); got != hits {
		return fmt.Errorf("the report has %d symbols reached, want the %d hit", got, hits)
	}
	return nil
}

// cliRound runs reach attach on a fresh process of the fixture: from its
// start to its "observing" message, and from SIGINT to its exit.
func cliRound(ctx context.Context, reach string, fx *fixture, res *result, rep string) error {
	a, err := startApp(fx.exe)
	if err != nil {
		return err
	}
	defer a.stop()
	os.Remove(rep)
	cmd := exec.CommandContext(ctx, reach, "attach", "-db", fx.db, "-max-sites", strconv.Itoa(maxSites(fx.n)),
		"-format", "json", "-o", rep, strconv.Itoa(a.pid()))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var said []string
	up := time.Duration(0)
	timeout := time.After(2 * time.Minute)
	for up == 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				return fmt.Errorf("exited before observing: %s", strings.Join(said, "\n"))
			}
			said = append(said, l)
			if strings.Contains(l, "observing") {
				up = time.Since(start)
			}
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("no \"observing\" message after 2 minutes: %s", strings.Join(said, "\n"))
		}
	}
	if k, err := a.armed(); err != nil || k != fx.n {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("process %d: %d of %d functions carry a probe after \"observing\" (%v)", a.pid(), k, fx.n, err)
	}
	stop := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("after SIGINT: %w", err)
	}
	down := time.Since(stop)
	if k, err := a.armed(); err != nil || k != 0 {
		return fmt.Errorf("process %d: %d functions still carry a probe after reach exited (%v)", a.pid(), k, err)
	}
	r, err := harness.ReadReport(rep)
	if err != nil {
		return err
	}
	if got := symbols(r); got != fx.n {
		return fmt.Errorf("the report lists %d vulnerable symbols, want %d", got, fx.n)
	}
	res.cliUp = append(res.cliUp, up)
	res.cliDown = append(res.cliDown, down)
	return nil
}

func symbols(r *report.Report) int {
	n := 0
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			n += len(f.Symbols)
		}
	}
	return n
}

func reached(r *report.Report) int {
	n := 0
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			for _, s := range f.Symbols {
				if s.Status == report.Reached {
					n++
				}
			}
		}
	}
	return n
}

func printResults(results []*result) {
	ms := func(ds []time.Duration) float64 { return harness.Ms(harness.Median(ds)) }
	fmt.Println("attach to a running process (in-process observe.Session; ms)")
	fmt.Printf("  %8s %14s %10s %10s %10s %12s %12s\n", "targets", "session start", "Add", "analysis", "arming", "arming/1000", "disarm all")
	for _, r := range results {
		var analysis []time.Duration
		for i := range r.add {
			analysis = append(analysis, r.add[i]-r.arm[i])
		}
		arm := ms(r.arm)
		fmt.Printf("  %8d %14.2f %10.2f %10.2f %10.2f %12.2f %12.2f\n", r.n, ms(r.start), ms(r.add), ms(analysis), arm, arm*1000/float64(r.n), ms(r.unarm))
	}
	fmt.Println("  Add = analysis + arming; arming: from the start of the first engine Arm call to the end of the last;")
	fmt.Println("  disarm all: SetTargets(none) after the hits")
	fmt.Println("\nreach attach, the whole command (ms)")
	fmt.Printf("  %8s %22s %22s\n", "targets", "start to \"observing\"", "SIGINT to exit")
	for _, r := range results {
		fmt.Printf("  %8d %22.1f %22.1f\n", r.n, ms(r.cliUp), ms(r.cliDown))
	}
	fmt.Println("\none-shot removal after a hit (ms from the call)")
	fmt.Printf("  %8s %16s %16s\n", "targets", "hit recorded", "probe gone")
	for _, r := range results {
		fmt.Printf("  %8d %16.2f %16.2f\n", r.n, ms(r.seen), ms(r.gone))
	}
	fmt.Println("  probe gone: the INT3 is out of the program's code, as the program sees it")
	fmt.Println("\ngoals")
	for _, r := range results {
		if r.n == 1000 {
			arm := ms(r.arm)
			fmt.Printf("  1,000 targets armed in under 20 ms after binary analysis: %.2f ms: %s\n", arm, harness.Goal(arm < 20))
		}
	}
	var gone []time.Duration
	for _, r := range results {
		gone = append(gone, r.gone...)
	}
	g := ms(gone)
	fmt.Printf("  a hit symbol disarmed in under 100 ms: median %.2f ms, worst %.2f ms over %d hits: %s\n", g, harness.Ms(slices.Max(gone)), len(gone), harness.Goal(g < 100))
}

// timedEngine records when its Arm calls start and end.
type timedEngine struct {
	probe.Engine
	mu          sync.Mutex
	first, last time.Time
	calls       int
}

func (e *timedEngine) Arm(ctx context.Context, spec probe.ProcessSpec) error {
	start := time.Now()
	err := e.Engine.Arm(ctx, spec)
	end := time.Now()
	e.mu.Lock()
	if e.calls == 0 {
		e.first = start
	}
	e.last = end
	e.calls++
	e.mu.Unlock()
	return err
}

// span returns the start of the first Arm call, the end of the last, and
// how many there were.
func (e *timedEngine) span() (first, last time.Time, calls int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first, e.last, e.calls
}
