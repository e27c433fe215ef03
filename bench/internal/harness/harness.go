// Package harness holds what the runtime benchmarks (bench/overhead,
// bench/arming, bench/http) share: finding the repository, building reach
// and fixture programs, the vulnerability database flag, reading reports
// and medians. bench/probe and bench/scan use its medians, and bench/scan
// its default database.
//
// The benchmarks run from the repository root (go run ./bench/NAME) and
// need root for eBPF.
package harness

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// ErrNotRoot reports a benchmark started without root, which eBPF probes
// need.
var ErrNotRoot = errors.New("needs root for eBPF probes")

// modulePath is the module a benchmark must run in.
const modulePath = "github.com/reach-sca/reach"

// CheckRoot returns ErrNotRoot, with what to do, when the process is not
// root.
func CheckRoot() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: run it as root (sudo go run ./bench/...)", ErrNotRoot)
	}
	return nil
}

// CheckRepoRoot returns an error unless the working directory is the root
// of the reach repository, where the benchmarks find their fixtures.
func CheckRepoRoot() error {
	data, err := os.ReadFile("go.mod")
	if err != nil || !bytes.Contains(data, []byte("module "+modulePath+"\n")) {
		return fmt.Errorf("no go.mod of %s in the working directory: run the benchmark from the repository root", modulePath)
	}
	return nil
}

// DefaultDB is the default vulnerability database directory:
// $REACH_TEST_VULNDB, else ../shared/vulndb.
func DefaultDB() string {
	return cmp.Or(os.Getenv("REACH_TEST_VULNDB"), "../shared/vulndb")
}

// CheckDB returns the absolute path of the database directory db after
// checking that it looks like the v1 layout.
func CheckDB(db string) (string, error) {
	abs, err := filepath.Abs(db)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "index", "modules.json")); err != nil {
		return "", fmt.Errorf("vulnerability database %s: %w (pass -db DIR or set REACH_TEST_VULNDB to a database in the v1 layout)", abs, err)
	}
	return abs, nil
}

// BuildReach builds ./cmd/reach into dir and returns the binary's path.
func BuildReach(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "reach")
	if err := Go(ctx, ".", nil, "build", "-o", out, "./cmd/reach"); err != nil {
		return "", fmt.Errorf("build reach: %w", err)
	}
	return out, nil
}

// Go runs the go command in dir with env added to the environment. The
// error carries the command's standard error.
func Go(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	return nil
}

// ReadReport reads a JSON report that reach wrote to path.
func ReadReport(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Symbol returns the symbol pkg.name of finding osvID in r, or nil.
func Symbol(r *report.Report, osvID, pkg, name string) *report.Symbol {
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			if f.OSV != osvID {
				continue
			}
			for _, s := range f.Symbols {
				if s.Package == pkg && s.Name == name {
					return s
				}
			}
		}
	}
	return nil
}

// TotalHits sums the hits of every symbol of every finding in r.
func TotalHits(r *report.Report) uint64 {
	var n uint64
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			for _, s := range f.Symbols {
				n += s.Hits
			}
		}
	}
	return n
}

// Median returns the median of xs (the upper one for an even count), or
// the zero value for none.
func Median[T cmp.Ordered](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Ms returns d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Goal says whether a goal was met, for the printed results.
func Goal(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// Setup is what a bench that runs reach on the real database needs.
type Setup struct {
	DB    string // the database directory, checked
	Tmp   string // a temporary directory, removed by Close
	Reach string // the reach binary, built in Tmp
}

// Prepare checks that the bench runs from the repository root, as root,
// with a database at db, and builds reach into a new temporary directory
// named after the bench.
func Prepare(ctx context.Context, name, db string) (*Setup, error) {
	if err := CheckRepoRoot(); err != nil {
		return nil, err
	}
	if err := CheckRoot(); err != nil {
		return nil, err
	}
	db, err := CheckDB(db)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "reach-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	reach, err := BuildReach(ctx, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &Setup{DB: db, Tmp: tmp, Reach: reach}, nil
}

// Close removes the temporary directory.
func (s *Setup) Close() { os.RemoveAll(s.Tmp) }

// CPUTime returns the user and system time of every thread of process
// pid, from /proc/PID/stat (in clock ticks of 10 ms).
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
	}
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}
