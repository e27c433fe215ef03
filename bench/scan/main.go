// Command scan compares the speed and peak memory of `reach scan` with
// `govulncheck -mode=binary` on one large, real Go program, both reading the
// same vulnerability database from a directory. It runs the two side by side,
// alternating, and prints medians and ratios, so that the machine's noise
// affects both alike.
//
//	go run ./bench/scan [-bin BINARY] [-db DIR] [-n ROUNDS]
//
// Without -bin it builds Hugo (github.com/gohugoio/hugo, about 60 MB with
// well over a hundred modules) once into the user cache directory. The
// agreement tests compare reach's findings with govulncheck's on it when
// asked (building it takes minutes, too long for CI):
//
//	REACH_TEST_LARGE_BIN=$HOME/.cache/reach-bench/hugo go test ./internal/match ./internal/cli -run Govulncheck -v
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
)

const hugo = "github.com/gohugoio/hugo@v0.121.0"

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/scan: ")
	bin := flag.String("bin", "", "the Go binary to scan (default: build "+hugo+")")
	db := flag.String("db", harness.DefaultDB(), "vulnerability database directory")
	n := flag.Int("n", 5, "rounds")
	gv := flag.String("govulncheck", "", "govulncheck binary (default: from PATH or GOPATH/bin)")
	flag.Parse()

	dbDir, err := filepath.Abs(*db)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dbDir, "index")); err != nil {
		log.Fatalf("database %s: %v (set -db or REACH_TEST_VULNDB)", dbDir, err)
	}
	if *bin == "" {
		*bin, err = buildHugo()
		if err != nil {
			log.Fatal(err)
		}
	}
	if *gv == "" {
		*gv, err = findGovulncheck()
		if err != nil {
			log.Fatal(err)
		}
	}
	tmp, err := os.MkdirTemp("", "reach-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	reach := filepath.Join(tmp, "reach")
	if out, err := exec.Command("go", "build", "-o", reach, "./cmd/reach").CombinedOutput(); err != nil {
		log.Fatalf("build reach: %v\n%s", err, out)
	}

	st, err := os.Stat(*bin)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("binary:   %s (%.1f MB)\n", *bin, float64(st.Size())/1e6)
	fmt.Printf("database: %s\n", dbDir)
	fmt.Printf("rounds:   %d, alternating, after one warm-up run each\n\n", *n)

	tools := []struct {
		name string
		args []string
		ok   func(code int) bool
	}{
		{"reach scan", []string{reach, "scan", "-db", dbDir, "-format", "json", "-o", filepath.Join(tmp, "reach.json"), *bin},
			func(c int) bool { return c == 0 || c == 3 }},
		{"govulncheck -mode=binary", []string{*gv, "-mode=binary", "-db", "file://" + dbDir, "-format", "json", *bin},
			func(c int) bool { return c == 0 }},
	}
	walls := make([][]time.Duration, len(tools))
	cpus := make([][]time.Duration, len(tools))
	rss := make([][]int64, len(tools))
	for round := -1; round < *n; round++ {
		for i, tool := range tools {
			wall, cpu, maxrss, code, err := run(tool.args)
			if err != nil || !tool.ok(code) {
				log.Fatalf("%s: exit %d: %v", tool.name, code, err)
			}
			if round >= 0 { // round -1 warms the page cache
				walls[i] = append(walls[i], wall)
				cpus[i] = append(cpus[i], cpu)
				rss[i] = append(rss[i], maxrss)
			}
		}
	}
	fmt.Printf("%-26s %14s %14s %15s\n", "tool", "wall (median)", "CPU (median)", "peak RSS (max)")
	for i, tool := range tools {
		fmt.Printf("%-26s %14s %14s %12.1f MB\n", tool.name, harness.Median(walls[i]).Round(time.Millisecond),
			harness.Median(cpus[i]).Round(time.Millisecond), float64(slices.Max(rss[i]))/1e6)
	}
	speed := float64(harness.Median(walls[1])) / float64(harness.Median(walls[0]))
	cpu := float64(harness.Median(cpus[1])) / float64(harness.Median(cpus[0]))
	mem := float64(slices.Max(rss[1])) / float64(slices.Max(rss[0]))
	fmt.Printf("\nspeed-up, wall (govulncheck / reach):   %.2fx (goal >= 3x)\n", speed)
	fmt.Printf("speed-up, CPU  (govulncheck / reach):   %.2fx\n", cpu)
	fmt.Printf("memory, peak   (govulncheck / reach):   %.2fx (goal > 1x)\n", mem)
}

// run runs a command with its output discarded and returns its wall time,
// CPU time (user and system), peak resident memory in bytes and exit code.
func run(args []string) (wall, cpu time.Duration, maxrss int64, code int, err error) {
	cmd := exec.Command(args[0], args[1:]...)
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, 0, 0, -1, err
	}
	ps := cmd.ProcessState
	return wall, ps.UserTime() + ps.SystemTime(), maxRSS(ps), ps.ExitCode(), nil
}

// buildHugo builds Hugo once into the user cache directory.
func buildHugo() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "reach-bench")
	path := filepath.Join(dir, "hugo")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "building %s into %s (once; takes minutes)...\n", hugo, dir)
	cmd := exec.Command("go", "install", hugo)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", hugo, err)
	}
	return path, nil
}

func findGovulncheck() (string, error) {
	if p, err := exec.LookPath("govulncheck"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(string(out[:len(out)-1]), "bin", "govulncheck")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("govulncheck not found: go install golang.org/x/vuln/cmd/govulncheck@v1.8.0")
}
