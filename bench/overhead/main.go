// Command overhead measures what `reach run` costs a program that calls a
// vulnerable function in a tight loop: golang.org/x/text v0.3.5's
// language.Parse (GO-2021-0113), a fixed number of times (testdata/loop).
//
// It runs, side by side in alternating rounds, the program alone, under
// `reach run` (one-shot, the default: the probe goes away after the first
// call) and under `reach run -count` (every call counted), and prints the
// medians of the whole command's wall time (reach's start-up included) and
// of the program's own loop time, with their ratios to the program alone.
// It does so for two builds of the program: as the compiler builds it,
// where language.Parse is inlined into the loop and the probe sits at the
// inlined copy, and with inlining off in package main (-gcflags=-l), where
// the probe sits at language.Parse's PUSH RBP.
//
//	go run ./bench/overhead [-calls N] [-rounds R] [-db DIR]
//
// It needs root and the real vulnerability database (-db, default
// $REACH_TEST_VULNDB, else ../shared/vulndb).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
)

const (
	osvID  = "GO-2021-0113"
	pkg    = "golang.org/x/text/language"
	symbol = "Parse"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/overhead: ")
	calls := flag.Int("calls", 4_000_000, "calls of language.Parse per run")
	rounds := flag.Int("rounds", 5, "rounds; each runs every variant once")
	db := flag.String("db", harness.DefaultDB(), "vulnerability database directory (v1 layout)")
	flag.Parse()
	if *calls <= 0 || *rounds <= 0 {
		log.Fatal("-calls and -rounds must be positive")
	}
	if err := run(context.Background(), *calls, *rounds, *db); err != nil {
		log.Fatal(err)
	}
}

// variant is one way to run the fixture.
type variant struct {
	name  string
	reach []string // reach run's flags; nil runs the program alone
}

var variants = []variant{
	{"plain", nil},
	{"reach run", []string{}},
	{"reach run -count", []string{"-count"}},
}

// build is one build of the fixture.
type build struct {
	name, about string
	gcflags     string
	exe         string
}

// sample is one run's result.
type sample struct {
	wall, loop time.Duration
	cpu        time.Duration // the program's CPU time in its loop
	hits       uint64        // count mode: hits in the report
}

func run(ctx context.Context, calls, rounds int, db string) error {
	st, err := harness.Prepare(ctx, "overhead", db)
	if err != nil {
		return err
	}
	defer st.Close()
	db, tmp, reach := st.DB, st.Tmp, st.Reach
	src := filepath.Join(tmp, "loop")
	if err := os.CopyFS(src, os.DirFS(filepath.Join("bench", "overhead", "testdata", "loop"))); err != nil {
		return err
	}
	builds := []*build{
		{name: "inlined", about: "as the compiler builds it: language.Parse is inlined into the loop, the probe sits at the inlined copy"},
		{name: "not inlined", about: "-gcflags=-l: language.Parse is called, the probe sits at its PUSH RBP", gcflags: "-l"},
	}
	for i, b := range builds {
		b.exe = filepath.Join(tmp, fmt.Sprintf("loop%d", i))
		args := []string{"build", "-o", b.exe}
		if b.gcflags != "" {
			args = append(args, "-gcflags="+b.gcflags)
		}
		if err := harness.Go(ctx, src, []string{"GOFLAGS=-mod=mod", "CGO_ENABLED=0"}, append(args, ".")...); err != nil {
			return fmt.Errorf("build the fixture: %w", err)
		}
	}
	r := &runner{reach: reach, db: db, report: filepath.Join(tmp, "report.json")}

	fmt.Printf("%s.%s (%s) called %d times in a loop; %d rounds, variants alternating, medians\n\n", pkg, symbol, osvID, calls, rounds)
	startPlain, startReach := []time.Duration{}, []time.Duration{}
	res := make([][][]sample, len(builds)) // [build][variant][round]
	for i := range res {
		res[i] = make([][]sample, len(variants))
	}
	for round := range rounds {
		// Start-up alone: the program with no calls.
		for _, v := range rotate(variants[:2], round) {
			s, err := r.run(ctx, builds[0].exe, 0, v)
			if err != nil {
				return err
			}
			if v.reach == nil {
				startPlain = append(startPlain, s.wall)
			} else {
				startReach = append(startReach, s.wall)
			}
		}
		for bi, b := range builds {
			for vi, v := range rotate(variants, round) {
				s, err := r.run(ctx, b.exe, calls, v)
				if err != nil {
					return fmt.Errorf("%s build, %s: %w", b.name, v.name, err)
				}
				vi = (vi + round) % len(variants)
				res[bi][vi] = append(res[bi][vi], s)
			}
		}
	}

	sp, sr := harness.Median(startPlain), harness.Median(startReach)
	fmt.Printf("start-up (the program with 0 calls): plain %.1f ms, reach run %.1f ms: reach adds %.1f ms\n\n",
		harness.Ms(sp), harness.Ms(sr), harness.Ms(sr-sp))
	for bi, b := range builds {
		fmt.Printf("build %q: %s\n", b.name, b.about)
		fmt.Printf("  %-18s %12s %12s %12s %11s %11s %11s\n", "variant", "wall", "loop", "loop CPU", "wall/plain", "loop/plain", "CPU/plain")
		med := make([]sample, len(variants))
		for vi, v := range variants {
			med[vi] = medians(res[bi][vi])
			fmt.Printf("  %-18s %9.1f ms %9.1f ms %9.1f ms %10.3fx %10.3fx %10.3fx\n", v.name,
				harness.Ms(med[vi].wall), harness.Ms(med[vi].loop), harness.Ms(med[vi].cpu),
				ratio(med[vi].wall, med[0].wall), ratio(med[vi].loop, med[0].loop), ratio(med[vi].cpu, med[0].cpu))
		}
		// Ratios within each round, whose variants ran close in time, are
		// less affected by the machine's changing load than the medians.
		var one, perLoop, perCPU, perWall []float64
		for r := range res[bi][0] {
			p, o, c := res[bi][0][r], res[bi][1][r], res[bi][2][r]
			one = append(one, ratio(o.wall, p.wall))
			perLoop = append(perLoop, float64(c.loop-p.loop)/float64(c.hits))
			perCPU = append(perCPU, float64(c.cpu-p.cpu)/float64(c.hits))
			perWall = append(perWall, float64(c.wall-p.wall)/float64(c.hits))
		}
		o := harness.Median(one)
		fmt.Printf("  one-shot, wall with reach's start-up: %.3fx plain (median of the rounds' ratios; goal <= 1.05x: %s)\n", o, harness.Goal(o <= 1.05))
		pl := harness.Median(perLoop)
		fmt.Printf("  count mode: %d probed calls counted; cost per probed call %.0f ns from loop times (goal <= 1000 ns: %s), %.0f ns from loop CPU times, %.0f ns from wall times (medians over the rounds)\n\n",
			med[2].hits, pl, harness.Goal(pl <= 1000), harness.Median(perCPU), harness.Median(perWall))
	}
	return nil
}

// runner runs the fixture, alone or under reach run.
type runner struct {
	reach, db, report string
}

// run runs exe with calls calls as v says and checks the report: under
// reach, language.Parse must be reported reached, and in count mode with a
// hit for every call.
func (r *runner) run(ctx context.Context, exe string, calls int, v variant) (sample, error) {
	argv := []string{exe, fmt.Sprint(calls)}
	if v.reach != nil {
		os.Remove(r.report)
		head := append([]string{r.reach, "run", "-db", r.db, "-format", "json", "-o", r.report}, v.reach...)
		argv = append(append(head, "--"), argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v: %w\n%s", argv, err, stderr.Bytes())
	}
	var n, ns, cpu int64
	if _, err := fmt.Sscanf(stdout.String(), "calls %d loop_ns %d cpu_ns %d\n", &n, &ns, &cpu); err != nil || n != int64(calls) {
		return sample{}, fmt.Errorf("%v printed %q, want \"calls %d loop_ns NS cpu_ns NS\"", argv, stdout.String(), calls)
	}
	s := sample{wall: wall, loop: time.Duration(ns), cpu: time.Duration(cpu)}
	if v.reach == nil || calls == 0 {
		return s, nil
	}
	rep, err := harness.ReadReport(r.report)
	if err != nil {
		return sample{}, err
	}
	sym := harness.Symbol(rep, osvID, pkg, symbol)
	if sym == nil || sym.Status != "reached" {
		return sample{}, fmt.Errorf("%v: the report does not say %s.%s (%s) was reached: the measurement would be meaningless", argv, pkg, symbol, osvID)
	}
	s.hits = harness.TotalHits(rep)
	if len(v.reach) > 0 && sym.Hits < uint64(calls) {
		return sample{}, fmt.Errorf("%v: count mode counted %d calls of %s.%s, want at least %d", argv, sym.Hits, pkg, symbol, calls)
	}
	return s, nil
}

// rotate returns vs rotated left by n, so that each variant takes each
// place in the order in turn.
func rotate[T any](vs []T, n int) []T {
	n %= len(vs)
	return append(append([]T(nil), vs[n:]...), vs[:n]...)
}

func medians(ss []sample) sample {
	var walls, loops, cpus []time.Duration
	var hits []uint64
	for _, s := range ss {
		walls = append(walls, s.wall)
		loops = append(loops, s.loop)
		cpus = append(cpus, s.cpu)
		hits = append(hits, s.hits)
	}
	return sample{wall: harness.Median(walls), loop: harness.Median(loops), cpu: harness.Median(cpus), hits: harness.Median(hits)}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
