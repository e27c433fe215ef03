// Command reliability runs reach's reliability and security suite at
// bench scale and prints its figures: attach/detach cycles survived by
// busy programs, SIGKILLs of reach survived, fuzz executions, malformed
// inputs tried, and reports lost or corrupted.
//
//	go run ./bench/reliability                 # 1,000 cycles, 100 kills, fuzz 15s per target
//	go run ./bench/reliability -fuzz-log f.txt # read a .ci/fuzz output instead of fuzzing
//	go run ./bench/reliability -fuzztime 0     # no fuzzing
//
// It needs root (eBPF). The figures come from the tests in
// internal/reliability, which fail on any broken promise; this program
// fails when they do.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reliability", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cycles := fs.Int("cycles", 1000, "attach/detach cycles on the busy programs")
	kills := fs.Int("kills", 100, "SIGKILLs of reach attach at random moments")
	corruptions := fs.Int("corruptions", 200, "randomly damaged binaries to analyse")
	fuzztime := fs.Duration("fuzztime", 15*time.Second, "fuzzing time per fuzz target (.ci/fuzz); 0 skips fuzzing")
	fuzzLog := fs.String("fuzz-log", "", "read the output of an earlier .ci/fuzz run from `FILE` instead of fuzzing")
	verbose := fs.Bool("v", false, "show the tests' output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root for eBPF: run it with sudo")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	start := time.Now()

	// The suite at bench scale.
	fmt.Fprintf(stderr, "reliability: running internal/reliability (%d cycles, %d kills, %d damaged binaries)...\n", *cycles, *kills, *corruptions)
	out, testErr := goTest(ctx, root, *verbose, stderr, []string{
		"REACH_RELIABILITY_CYCLES=" + strconv.Itoa(*cycles),
		"REACH_RELIABILITY_KILLS=" + strconv.Itoa(*kills),
		"REACH_RELIABILITY_CORRUPTIONS=" + strconv.Itoa(*corruptions),
	}, "-timeout", "90m", "./internal/reliability")
	figs := figures(out)
	if testErr != nil {
		return fmt.Errorf("internal/reliability failed: %w\n%s", testErr, failures(out))
	}

	// The malformed inputs the other packages' tests try.
	fmt.Fprintln(stderr, "reliability: counting the malformed-input cases of vulndb and binfo...")
	other := 0
	for _, t := range []struct{ pkg, run string }{
		{"./internal/vulndb", "^(TestMisbehavingServer|TestMisbehavingServerWithCache|TestTraversal|TestDirMalformedIndex|TestNewErrors|TestValidID)$"},
		{"./internal/binfo", "^(TestOpenErrors)$"},
	} {
		out, err := goTest(ctx, root, *verbose, stderr, nil, "-run", t.run, t.pkg)
		if err != nil {
			return fmt.Errorf("%s failed: %w\n%s", t.pkg, err, failures(out))
		}
		other += strings.Count(out, "--- PASS: ") - strings.Count(out, "\n--- PASS: ")
	}

	// Fuzzing.
	var fuzzOut string
	switch {
	case *fuzzLog != "":
		b, err := os.ReadFile(*fuzzLog)
		if err != nil {
			return fmt.Errorf("-fuzz-log: %w", err)
		}
		fuzzOut = string(b)
	case *fuzztime > 0:
		fmt.Fprintf(stderr, "reliability: fuzzing every target for %s...\n", *fuzztime)
		cmd := exec.CommandContext(ctx, "bash", ".ci/fuzz")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "FUZZTIME="+fuzztime.String())
		b, err := cmd.CombinedOutput()
		fuzzOut = string(b)
		if *verbose {
			stderr.Write(b)
		}
		if err != nil {
			return fmt.Errorf(".ci/fuzz failed: %w\n%s", err, fuzzOut)
		}
	}
	fuzzTargets, fuzzExecs, fuzzFailures, perTarget := parseFuzz(fuzzOut)

	reports := figs["cycle_reports"] + figs["kill_reports"]
	fmt.Fprintf(stderr, "reliability: figures %v\n", figs)
	fmt.Fprintf(stdout, "reach reliability and security suite (%s, %s, %d CPUs), %s\n\n", kernel(), runtime.Version(), runtime.NumCPU(), time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "attach/detach cycles survived      %6d   2 busy programs (64 goroutines, GC, deep recursion; plain and stripped PIE), one-shot and count mode, targets changed while attached; every round's checksum equal to an unobserved run's, exit 0, no probe left\n", figs["cycles"])
	fmt.Fprintf(stdout, "SIGKILLs of reach attach survived  %6d   by phase: arming %d, armed %d, reporting %d, finished before the kill %d; programs kept running with unchanged checksums\n",
		figs["kills"], figs["kill_phase_arming"], figs["kill_phase_armed"], figs["kill_phase_reporting"], figs["kill_phase_finished"])
	fmt.Fprintf(stdout, "  processes the kernel left probed  %6d   after a kill (\"failed to unregister, leaking uprobe\"): int3 left in the program until it exits; %d of them removed by a later reach attach\n", figs["kill_kernel_leaks"], figs["kill_kernel_leaks_repaired"])
	fmt.Fprintf(stdout, "  kills that left a temporary file   %6d   next to -o (.reach-*; the report itself was always whole or absent)\n", figs["kill_temp_files_left"])
	fmt.Fprintf(stdout, "processes exiting while armed      %6d   each observed or refused as exited; none disturbed\n", figs["exiting_processes"])
	if fuzzOut != "" {
		fmt.Fprintf(stdout, "fuzz executions                %10d   %d targets, %d failures\n", fuzzExecs, fuzzTargets, fuzzFailures)
		for _, l := range perTarget {
			fmt.Fprintf(stdout, "    %s\n", l)
		}
	}
	fmt.Fprintf(stdout, "malformed inputs tried             %6d   %d here (targets files %d, PID lists %d, damaged databases %d, damaged binaries %d) + %d in vulndb and binfo tests\n",
		figs["malformed_inputs"]+other, figs["malformed_inputs"],
		figs["targets_cli_cases"]+figs["targets_watch_cases"], figs["bad_pid_cases"], figs["malformed_db_cases"], figs["corrupt_binaries"], other)
	fmt.Fprintf(stdout, "reports checked                    %6d   parsed as reach/v1 JSON with the expected binaries, PIDs, findings and symbols\n", reports)
	fmt.Fprintf(stdout, "lost or corrupted reports          %6d\n", 0)
	return nil
}

// goTest runs go test -count=1 -v with extra environment and returns its
// output.
func goTest(ctx context.Context, root string, verbose bool, stderr io.Writer, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-count=1", "-v"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if verbose {
		w = io.MultiWriter(&buf, stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	return buf.String(), err
}

var figureLine = regexp.MustCompile(`reliability-figure ([a-z_]+)=([0-9]+)`)

// figures sums the "reliability-figure NAME=N" lines of the tests.
func figures(out string) map[string]int {
	f := map[string]int{}
	for _, m := range figureLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		f[m[1]] += n
	}
	return f
}

// failures returns the failing tests' lines.
func failures(out string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "FAIL") || strings.Contains(l, "_test.go:") || strings.Contains(l, "panic") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var fuzzSummary = regexp.MustCompile(`fuzz: ([0-9]+) targets, ([0-9]+) executions, ([0-9]+) failures`)

// parseFuzz reads .ci/fuzz's output.
func parseFuzz(out string) (targets, execs, failed int, perTarget []string) {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "fuzz: ok ") || strings.HasPrefix(l, "fuzz: FAIL ") {
			perTarget = append(perTarget, strings.TrimPrefix(l, "fuzz: "))
		}
	}
	sort.Strings(perTarget)
	if m := fuzzSummary.FindStringSubmatch(out); m != nil {
		targets, _ = strconv.Atoi(m[1])
		execs, _ = strconv.Atoi(m[2])
		failed, _ = strconv.Atoi(m[3])
	}
	return targets, execs, failed, perTarget
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(dir + "/.ci/fuzz"); err == nil {
			return dir, nil
		}
		parent := dir[:max(strings.LastIndexByte(dir, '/'), 0)]
		if parent == dir || parent == "" {
			return "", errors.New("run it inside the reach repository (no .ci/fuzz above the working directory)")
		}
		dir = parent
	}
}
