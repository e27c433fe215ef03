// Command probe measures the eBPF probe engine (internal/probe) on this
// machine, side by side:
//
//   - the cost per call of a cheap function, plain and probed in count mode
//     at its PUSH RBP (the kernel reading the stack to count per stack, and
//     counting by return address once told to, see Engine.KeyByReturn) and
//     at its entry, and after a one-shot probe removed itself;
//
//   - the time to arm and disarm 1,000 sites, as one group and as 1,000
//     groups, with uprobe_multi links, and the same for a few classic
//     per-site uprobes.
//
//     go run ./bench/probe [-calls N] [-rounds R] [-sites 1000] [-classic 10]
//
// It needs root. It builds internal/probe/testdata/hot, runs it, and finds
// the sites with internal/binfo. Results are medians over the rounds.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/probe"
)

func main() {
	probe.RunKeeperIfRequested() // the probe engine's keeper is this binary
	log.SetFlags(0)
	log.SetPrefix("bench/probe: ")
	calls := flag.Int("calls", 100_000, "calls per measured loop")
	rounds := flag.Int("rounds", 3, "rounds")
	nsites := flag.Int("sites", 1000, "sites to arm for the arm and disarm times")
	classic := flag.Int("classic", 20, "sites to arm with classic uprobes (slow to detach)")
	flag.BoolVar(&noKeeper, "nokeeper", false, "hold the probe links in this process instead of a keeper process")
	flag.Parse()
	if err := run(context.Background(), *calls, *rounds, *nsites, *classic); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, calls, rounds, nsites, nclassic int) error {
	tmp, err := os.MkdirTemp("", "reach-bench-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	exe := filepath.Join(tmp, "hot")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Dir = filepath.Join("internal", "probe", "testdata", "hot")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the fixture (run from the repository root): %w", err)
	}
	bin, err := binfo.Open(exe)
	if err != nil {
		return err
	}
	defer bin.Close()
	work, err := find(bin, "main.work")
	if err != nil {
		return err
	}
	push, err := bin.EntrySite(work)
	if err != nil {
		return err
	}
	if push.Kind != binfo.SitePushBP {
		return fmt.Errorf("main.work has no PUSH RBP site")
	}
	entry := probe.Site{Offset: work.Offset, PC: work.Entry, Kind: probe.SiteEntry}

	e, err := probe.New(ctx, probe.Options{NoKeeper: noKeeper})
	if err != nil {
		return err
	}
	defer e.Close()
	var lastReturn atomic.Uint64 // of the last hit
	go func() {
		for hit := range e.Hits() {
			lastReturn.Store(hit.Return)
		}
	}()
	h, err := start(exe)
	if err != nil {
		return err
	}
	defer h.stop()

	// Cost per call.
	var plain, atPush, atPushByReturn, atEntry, afterOneShot []float64
	var id uint64
	probed := func(site probe.Site, byReturn bool) (float64, error) {
		id++
		spec := probe.ProcessSpec{PID: h.pid(), Path: exe, Mode: probe.Count, Groups: []probe.Group{{ID: id, Sites: []probe.Site{site}}}}
		if err := e.Arm(ctx, spec); err != nil {
			return 0, err
		}
		if byReturn {
			lastReturn.Store(0)
			if _, err := h.bench(1); err != nil {
				return 0, err
			}
			for deadline := time.Now().Add(time.Second); lastReturn.Load() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					return 0, errors.New("no hit of main.work within a second")
				}
			}
			if err := e.KeyByReturn(ctx, h.pid(), id, 0, lastReturn.Load()); err != nil {
				return 0, err
			}
		}
		ns, err := h.bench(calls)
		if err := e.Disarm(ctx, h.pid(), id); err != nil {
			return 0, err
		}
		return ns, err
	}
	for range rounds {
		ns, err := h.bench(calls)
		if err != nil {
			return err
		}
		plain = append(plain, ns)
		if ns, err = probed(site(push), false); err != nil {
			return err
		}
		atPush = append(atPush, ns)
		if ns, err = probed(site(push), true); err != nil {
			return err
		}
		atPushByReturn = append(atPushByReturn, ns)
		if ns, err = probed(entry, false); err != nil {
			return err
		}
		atEntry = append(atEntry, ns)

		id++
		spec := probe.ProcessSpec{PID: h.pid(), Path: exe, Mode: probe.OneShot, Groups: []probe.Group{{ID: id, Sites: []probe.Site{site(push)}}}}
		if err := e.Arm(ctx, spec); err != nil {
			return err
		}
		if _, err := h.bench(1); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // the one-shot removal takes 20-60 ms
		if ns, err = h.bench(calls); err != nil {
			return err
		}
		afterOneShot = append(afterOneShot, ns)
	}
	p := harness.Median(plain)
	fmt.Printf("cost per call of main.work, %d calls, median of %d rounds\n", calls, rounds)
	fmt.Printf("  %-34s %10.1f ns/call\n", "plain", p)
	for _, r := range []struct {
		name string
		ns   []float64
	}{
		{"count mode at push-bp, by stack", atPush},
		{"count mode at push-bp, by return", atPushByReturn},
		{"count mode at entry", atEntry},
		{"after a one-shot push-bp probe", afterOneShot},
	} {
		m := harness.Median(r.ns)
		fmt.Printf("  %-34s %10.1f ns/call  %8.1fx plain  overhead %8.1f ns\n", r.name, m, m/p, m-p)
	}
	fmt.Printf("  entry / push-bp overhead: %.1fx\n\n", (harness.Median(atEntry)-p)/(harness.Median(atPush)-p))

	sites := manySites(bin, nsites)
	fmt.Printf("arm and disarm %d sites (PUSH RBP sites of functions, non-runtime first), median of %d rounds\n", len(sites), rounds)
	if err := armTimes(ctx, e, h.pid(), exe, sites, rounds, &id); err != nil {
		return err
	}
	if nclassic > 0 {
		ce, err := probe.New(ctx, probe.Options{Classic: true, NoKeeper: noKeeper})
		if err != nil {
			return err
		}
		defer ce.Close()
		go func() {
			for range ce.Hits() {
			}
		}()
		fmt.Printf("\nclassic per-site uprobes, %d sites, 1 round\n", nclassic)
		if err := armTimes(ctx, ce, h.pid(), exe, sites[:min(nclassic, len(sites))], 1, &id); err != nil {
			return err
		}
	}
	return nil
}

func armTimes(ctx context.Context, e probe.Engine, pid int, exe string, sites []probe.Site, rounds int, id *uint64) error {
	var armOne, disarmOne, armMany, disarmMany, disarmEach []float64
	if len(sites) <= serialGroups {
		return fmt.Errorf("%d sites: want more than %d", len(sites), serialGroups)
	}
	for range rounds {
		*id++
		one := probe.ProcessSpec{PID: pid, Path: exe, Mode: probe.Count, Groups: []probe.Group{{ID: *id, Sites: sites}}}
		t0 := time.Now()
		if err := e.Arm(ctx, one); err != nil {
			return err
		}
		t1 := time.Now()
		if err := e.Disarm(ctx, pid, *id); err != nil {
			return err
		}
		t2 := time.Now()
		armOne = append(armOne, harness.Ms(t1.Sub(t0)))
		disarmOne = append(disarmOne, harness.Ms(t2.Sub(t1)))

		many := probe.ProcessSpec{PID: pid, Path: exe, Mode: probe.Count}
		first := *id + 1
		for _, s := range sites {
			*id++
			many.Groups = append(many.Groups, probe.Group{ID: *id, Sites: []probe.Site{s}})
		}
		t0 = time.Now()
		if err := e.Arm(ctx, many); err != nil {
			return err
		}
		t1 = time.Now()
		serial := min(serialGroups, len(sites))
		for g := first; g < first+uint64(serial); g++ {
			if err := e.Disarm(ctx, pid, g); err != nil {
				return err
			}
		}
		t2 = time.Now()
		if err := e.DisarmProcess(ctx, pid); err != nil {
			return err
		}
		t3 := time.Now()
		armMany = append(armMany, harness.Ms(t1.Sub(t0)))
		disarmEach = append(disarmEach, harness.Ms(t2.Sub(t1))/float64(serial))
		disarmMany = append(disarmMany, harness.Ms(t3.Sub(t2)))
	}
	n := len(sites)
	fmt.Printf("  %-48s %10.2f ms\n", "arm 1 group of all sites", harness.Median(armOne))
	fmt.Printf("  %-48s %10.2f ms\n", "disarm it", harness.Median(disarmOne))
	fmt.Printf("  %-48s %10.2f ms\n", fmt.Sprintf("arm %d groups of 1 site", n), harness.Median(armMany))
	fmt.Printf("  %-48s %10.2f ms per group\n", fmt.Sprintf("disarm %d of them one by one (Disarm)", min(serialGroups, n)), harness.Median(disarmEach))
	fmt.Printf("  %-48s %10.2f ms  (%.1fx faster than serially)\n", fmt.Sprintf("disarm the other %d at once (DisarmProcess)", n-min(serialGroups, n)),
		harness.Median(disarmMany), harness.Median(disarmEach)*float64(n-min(serialGroups, n))/harness.Median(disarmMany))
	return nil
}

// noKeeper is the -nokeeper flag.
var noKeeper bool

// serialGroups is how many single-site groups armTimes disarms one by one.
const serialGroups = 10

func site(s binfo.Site) probe.Site {
	return probe.Site{Offset: s.Offset, PC: s.PC, Kind: probe.SiteKind(s.Kind)}
}

func find(b *binfo.Binary, name string) (*binfo.Func, error) {
	for i := range b.Funcs {
		if b.Funcs[i].Name == name {
			return &b.Funcs[i], nil
		}
	}
	return nil, fmt.Errorf("%s: no function %s", b.Path, name)
}

// manySites returns the PUSH RBP sites of up to n functions, those outside
// the runtime first (an idle fixture does not run them). Entry sites of
// assembly functions are left out: the kernel refuses to probe some of
// their first instructions, such as segment-prefixed ones.
func manySites(b *binfo.Binary, n int) []probe.Site {
	var rest, out []probe.Site
	for i := range b.Funcs {
		f := &b.Funcs[i]
		s, err := b.EntrySite(f)
		if err != nil || s.Kind != binfo.SitePushBP {
			continue
		}
		if strings.HasPrefix(f.Name, "runtime.") || strings.HasPrefix(f.Name, "internal/runtime") {
			rest = append(rest, site(s))
		} else {
			out = append(out, site(s))
		}
	}
	out = append(out, rest...)
	return out[:min(n, len(out))]
}

// fixture is a running testdata/hot.
type fixture struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func start(exe string) (*fixture, error) {
	cmd := exec.Command(exe)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &fixture{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !f.out.Scan() || f.out.Text() != "ready" {
		f.stop()
		return nil, errors.New("the fixture did not start")
	}
	return f, nil
}

func (f *fixture) pid() int { return f.cmd.Process.Pid }

// bench runs n calls and returns the nanoseconds per call.
func (f *fixture) bench(n int) (float64, error) {
	if _, err := fmt.Fprintf(f.in, "bench %d\n", n); err != nil {
		return 0, err
	}
	if !f.out.Scan() {
		return 0, fmt.Errorf("fixture output ended: %v", f.out.Err())
	}
	v, ok := strings.CutPrefix(f.out.Text(), "ns ")
	ns, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("fixture said %q", f.out.Text())
	}
	return ns / float64(n), nil
}

func (f *fixture) stop() {
	f.in.Close()
	f.cmd.Process.Kill()
	f.cmd.Wait()
}
