// Command gotest measures what `reach run -- go test ./...` costs a test
// suite: the start-up reach adds to each test binary it observes.
//
// It generates two modules, one of N packages (default 50) and one of a
// single package, each package with one trivial test; every fifth package
// of the large one calls golang.org/x/text v0.3.5's language.Parse
// (GO-2021-0113) in its test, so that reach arms probes in those test
// binaries and sees a hit. It warms the build cache, then runs, in
// alternating rounds, plain `go test -count=1 -p P ./...` and the same
// under `reach run -v` on both modules, and prints the medians of the wall
// and CPU times (of the whole process tree: go, its tools, the test
// binaries and reach), their ratios, and what reach adds per test binary
// after the first: ((reach-plain on N) - (reach-plain on 1)) / (N-1), so
// that what reach pays once (loading its eBPF programs, reading the
// database index) is not spread over the binaries. On a shared machine
// the wall times are noisy; the CPU times much less so. From reach's debug
// log it also prints how long the processes stayed stopped at exec: test
// binaries (analysed and armed) and the go command's own programs (let go
// at once). It checks that each report lists the test binaries, named by
// package, and none of the go command's tools.
//
//	go run ./bench/gotest [-packages N] [-rounds R] [-p P] [-db DIR] [-reach BIN]
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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
	"github.com/reach-sca/reach/internal/report"
)

const (
	osvID = "GO-2021-0113"
	pkg   = "golang.org/x/text/language"
)

// goalMs is the goal for the time reach adds per test binary after the
// first.
const goalMs = 20

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/gotest: ")
	packages := flag.Int("packages", 50, "packages (test binaries) in the large suite")
	rounds := flag.Int("rounds", 3, "rounds; each runs every variant once")
	par := flag.Int("p", 1, "go test -p: test binaries built and run at once")
	db := flag.String("db", harness.DefaultDB(), "vulnerability database directory (v1 layout)")
	reach := flag.String("reach", "", "measure this reach binary, such as an older build, instead of building ./cmd/reach")
	flag.Parse()
	if *packages < 2 || *rounds <= 0 || *par <= 0 {
		log.Fatal("-packages must be at least 2, -rounds and -p positive")
	}
	if err := run(context.Background(), *packages, *rounds, *par, *db, *reach); err != nil {
		log.Fatal(err)
	}
}

// suite is one generated module.
type suite struct {
	dir      string
	packages int
	parsers  int // packages whose test calls language.Parse
}

func run(ctx context.Context, n, rounds, par int, db, reach string) error {
	setup, err := harness.Prepare(ctx, "gotest", db)
	if err != nil {
		return err
	}
	defer setup.Close()
	if reach != "" {
		if setup.Reach, err = filepath.Abs(reach); err != nil {
			return err
		}
	}
	goSum, err := os.ReadFile("testdata/progs/textyaml/go.sum")
	if err != nil {
		return err
	}
	large, err := generate(filepath.Join(setup.Tmp, "large"), n, goSum)
	if err != nil {
		return err
	}
	small, err := generate(filepath.Join(setup.Tmp, "small"), 1, goSum)
	if err != nil {
		return err
	}
	env := []string{"GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"}
	for _, s := range []*suite{large, small} {
		// Download and compile once, so that rounds link and run only.
		if err := harness.Go(ctx, s.dir, env, "test", "-count=1", "./..."); err != nil {
			return err
		}
	}
	walls, cpus := map[string][]time.Duration{}, map[string][]time.Duration{}
	var stops stopTimes
	for r := range rounds {
		for _, s := range []*suite{large, small} {
			for _, observed := range []bool{false, true} {
				name := fmt.Sprintf("%d/%v", s.packages, observed)
				out := filepath.Join(setup.Tmp, fmt.Sprintf("report-%d-%d.json", s.packages, r))
				m, err := goTest(ctx, setup, s, par, observed, out, env)
				if err != nil {
					return err
				}
				walls[name] = append(walls[name], m.wall)
				cpus[name] = append(cpus[name], m.cpu)
				if s == large {
					stops.add(m.log)
				}
				if observed {
					if err := check(out, s); err != nil {
						if reach == "" {
							return err
						}
						// An older reach may report otherwise.
						log.Printf("%s: %v", reach, err)
					}
				}
			}
		}
	}
	fmt.Printf("go test -count=1 -p %d ./..., medians of %d rounds\n", par, rounds)
	var perWall, perCPU float64
	for _, k := range []struct {
		what string
		m    map[string][]time.Duration
		per  *float64
	}{{"wall", walls, &perWall}, {"CPU", cpus, &perCPU}} {
		med := func(s *suite, observed bool) time.Duration {
			return harness.Median(k.m[fmt.Sprintf("%d/%v", s.packages, observed)])
		}
		fmt.Printf("%-16s %12s %12s %8s %14s\n", k.what+" time", "plain", "reach run", "ratio", "added")
		for _, s := range []*suite{large, small} {
			p, o := med(s, false), med(s, true)
			fmt.Printf("%-16s %10.0fms %10.0fms %7.3fx %12.0fms\n", fmt.Sprintf("  %d packages", s.packages),
				harness.Ms(p), harness.Ms(o), float64(o)/float64(p), harness.Ms(o-p))
		}
		*k.per = harness.Ms(((med(large, true) - med(large, false)) - (med(small, true) - med(small, false))) / time.Duration(n-1))
	}
	stopped := harness.Ms(harness.Median(stops.observed))
	fmt.Printf("stopped at exec (%d rounds of %d packages): test binaries median %.1f ms, max %.1f ms (%d); go's own programs median %.2f ms (%d)\n",
		rounds, n, stopped, harness.Ms(slices.Max(append(stops.observed, 0))), len(stops.observed),
		harness.Ms(harness.Median(stops.other)), len(stops.other))
	// The wall times of a suite that runs for seconds vary by more than
	// reach adds on a shared machine: the goal is checked on what each
	// test binary waits (stopped at exec) and on the CPU time reach takes.
	fmt.Printf("added per test binary after the first: %.1f ms wall (noisy), %.1f ms CPU; stopped %.1f ms (goal ≤ %d ms stopped and CPU: %s)\n",
		perWall, perCPU, stopped, goalMs, harness.Goal(stopped <= goalMs && perCPU <= goalMs && len(stops.observed) > 0))
	return nil
}

// measure is one go test run's measures.
type measure struct {
	wall, cpu time.Duration
	log       []byte // reach's standard error, with -v
}

// stopTimes are the times processes stayed stopped at exec, from reach's
// debug log: observed (analysed, armed) or not (the go command's own).
type stopTimes struct{ observed, other []time.Duration }

// add reads the debug log of one reach run -v.
func (st *stopTimes) add(log []byte) {
	observed := map[string]bool{}
	stopped := map[string]time.Duration{}
	for line := range strings.Lines(string(log)) {
		pid := logField(line, "pid")
		switch {
		case strings.Contains(line, "msg=observing "):
			observed[pid] = true
		case strings.Contains(line, `msg="continued a process stopped at exec"`):
			if d, err := time.ParseDuration(logField(line, "stopped")); err == nil {
				stopped[pid] = d
			}
		}
	}
	for pid, d := range stopped {
		if observed[pid] {
			st.observed = append(st.observed, d)
		} else {
			st.other = append(st.other, d)
		}
	}
}

// logField returns the value of key=value in a log line.
func logField(line, key string) string {
	_, after, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, " ")
	return strings.TrimSpace(v)
}

// goTest runs go test on s, under reach run -v when observed (its JSON
// report to out), and returns its measures.
func goTest(ctx context.Context, setup *harness.Setup, s *suite, par int, observed bool, out string, env []string) (measure, error) {
	args := []string{"go", "test", "-count=1", "-p", strconv.Itoa(par), "./..."}
	if observed {
		args = append([]string{setup.Reach, "run", "-v", "-db", setup.DB, "-format", "json", "-o", out, "--"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return measure{}, fmt.Errorf("%v in %s: %w\n%s%s", args, s.dir, err, stdout.Bytes(), stderr.Bytes())
	}
	// The process's usage includes that of the descendants it waited for:
	// the whole tree.
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return measure{wall: wall, cpu: cpu, log: stderr.Bytes()}, nil
}

// check reads the report of a run of s: one binary per package, each
// named by its package, none of the go command's tools, and language.Parse
// reached in each test that calls it.
func check(path string, s *suite) error {
	r, err := harness.ReadReport(path)
	if err != nil {
		return err
	}
	if len(r.Binaries) != s.packages {
		return fmt.Errorf("%s: %d binaries, want the %d test binaries", path, len(r.Binaries), s.packages)
	}
	reached := 0
	for _, b := range r.Binaries {
		if b.TestOf == "" {
			return fmt.Errorf("%s: binary %s is not a test binary", path, b.Path)
		}
		for _, f := range b.Findings {
			if f.OSV == osvID && f.Status == report.Reached {
				reached++
			}
		}
	}
	if reached != s.parsers {
		return fmt.Errorf("%s: %s reached in %d test binaries, want %d", path, osvID, reached, s.parsers)
	}
	return nil
}

// generate writes a module of n packages, each with one test, in dir.
func generate(dir string, n int, goSum []byte) (*suite, error) {
	s := &suite{dir: dir, packages: n}
	files := map[string]string{
		"go.mod": "module example.com/gotestbench\n\ngo 1.18\n\nrequire golang.org/x/text v0.3.5\n",
		"go.sum": string(goSum),
	}
	for i := range n {
		p := fmt.Sprintf("p%02d", i)
		body := "package " + p + "\n\nfunc Add(a, b int) int { return a + b }\n"
		test := "package " + p + "\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"Add\")\n\t}\n}\n"
		if i%5 == 4 {
			s.parsers++
			body = "package " + p + "\n\nimport \"" + pkg + "\"\n\n// Canon returns the canonical form of a language tag.\nfunc Canon(s string) string {\n\tt, err := language.Parse(s)\n\tif err != nil {\n\t\treturn \"\"\n\t}\n\treturn t.String()\n}\n"
			test = "package " + p + "\n\nimport \"testing\"\n\nfunc TestCanon(t *testing.T) {\n\tif got := Canon(\"en-us\"); got != \"en-US\" {\n\t\tt.Fatalf(\"Canon = %q\", got)\n\t}\n}\n"
		}
		files[filepath.Join(p, p+".go")] = body
		files[filepath.Join(p, p+"_test.go")] = test
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return s, nil
}
