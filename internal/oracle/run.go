package oracle

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Outcome is what a program run did that reach must not change: its exit
// code and, for a test binary, each test's result.
type Outcome struct {
	Code  int
	Tests map[string]string // test name -> PASS, FAIL or SKIP
	// Output is the program's standard output when it is not a test
	// binary (a test binary's output holds timings).
	Output string
}

// Diff describes how o differs from want, or "" when it does not.
func (o *Outcome) Diff(want *Outcome) string {
	var d []string
	if o.Code != want.Code {
		d = append(d, fmt.Sprintf("exit code %d, want %d", o.Code, want.Code))
	}
	if o.Output != want.Output {
		d = append(d, "different output")
	}
	for name, res := range want.Tests {
		if got, ok := o.Tests[name]; !ok {
			d = append(d, fmt.Sprintf("%s missing (was %s)", name, res))
		} else if got != res {
			d = append(d, fmt.Sprintf("%s %s (was %s)", name, got, res))
		}
	}
	for name, res := range o.Tests {
		if _, ok := want.Tests[name]; !ok {
			d = append(d, fmt.Sprintf("%s %s (new)", name, res))
		}
	}
	return strings.Join(d, "; ")
}

var testLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(`)

// parseOutcome reads -test.v output for the test results.
func parseOutcome(code int, stdout []byte, test bool) *Outcome {
	o := &Outcome{Code: code}
	if !test {
		o.Output = string(stdout)
		return o
	}
	o.Tests = make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if m := testLine.FindStringSubmatch(sc.Text()); m != nil {
			o.Tests[m[2]] = m[1]
		}
	}
	return o
}

// Observation is what reach reported for one binary in one run, read from
// its JSON report.
type Observation struct {
	// Status of every key the report lists: "reached", "linked",
	// "imported" or any status reach adds.
	Status map[Key]string
	// Hits of every reached symbol, and whether the report marks the
	// count as a lower bound.
	Hits       map[Key]uint64
	LowerBound map[Key]bool
	// Stacks holds the functions of the stack of each reached key's first
	// hit, innermost first.
	Stacks  map[Key][]string
	Modules int // modules the report lists for the binary
}

// lowerBoundField is the JSON field of a report symbol that, when true,
// marks its hit count as a lower bound ("at least N"). Reports from before
// counts could be inexact do not have it.
const lowerBoundField = "hits_lower_bound"

// reportJSON is the part of reach's JSON report (schema reach/v1) the
// oracle reads. It is decoded here rather than through package report so
// that fields added to the schema later are read when present.
type reportJSON struct {
	Binaries []struct {
		Path     string            `json:"path"`
		Modules  []json.RawMessage `json:"modules"`
		Findings []struct {
			OSV     string                       `json:"osv"`
			Module  string                       `json:"module"`
			Status  string                       `json:"status"`
			Symbols []map[string]json.RawMessage `json:"symbols"`
		} `json:"findings"`
	} `json:"binaries"`
}

// readObservation reads reach's JSON report at path for the binary bin.
func readObservation(path, bin string) (*Observation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read reach's report: %w", err)
	}
	var r reportJSON
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reach's report %s: %w", path, err)
	}
	obs := &Observation{Status: make(map[Key]string), Hits: make(map[Key]uint64), LowerBound: make(map[Key]bool), Stacks: make(map[Key][]string)}
	for _, b := range r.Binaries {
		if b.Path != bin {
			continue
		}
		obs.Modules = len(b.Modules)
		for _, f := range b.Findings {
			if len(f.Symbols) == 0 {
				obs.set(Key{Module: f.Module}, f.Status, 0, false)
				continue
			}
			for _, s := range f.Symbols {
				var pkg, name, status string
				var hits uint64
				var lower bool
				var stack []struct{ Function string }
				for field, dst := range map[string]any{"package": &pkg, "name": &name, "status": &status, "hits": &hits, "stack": &stack} {
					if raw, ok := s[field]; ok {
						if err := json.Unmarshal(raw, dst); err != nil {
							return nil, fmt.Errorf("reach's report %s: %s %s: %w", path, f.OSV, field, err)
						}
					}
				}
				if raw, ok := s[lowerBoundField]; ok && string(raw) == "true" {
					lower = true
				}
				k := Key{Package: pkg, Name: name}
				if pkg == "" || string(s["scope"]) == `"module"` {
					// A whole module: its one symbol, when the report
					// has one, names the module as its package.
					k = Key{Module: f.Module}
				}
				obs.set(k, status, hits, lower)
				if len(stack) > 0 && len(obs.Stacks[k]) == 0 {
					for _, fr := range stack {
						obs.Stacks[k] = append(obs.Stacks[k], fr.Function)
					}
				}
			}
		}
	}
	return obs, nil
}

// set records a key's status, keeping the most advanced one when several
// findings list the same symbol.
func (o *Observation) set(k Key, status string, hits uint64, lower bool) {
	if old, ok := o.Status[k]; !ok || old != "reached" {
		o.Status[k] = status
	}
	if hits > o.Hits[k] {
		o.Hits[k] = hits
	}
	o.LowerBound[k] = o.LowerBound[k] || lower
}

// Reached is whether reach reported k as executed.
func (o *Observation) Reached(k Key) bool { return o.Status[k] == "reached" }

// runSpec is one run of a built binary.
type runSpec struct {
	bin     string
	covDir  string   // GOCOVERDIR (or -test.gocoverdir); "" for a plain binary
	reach   []string // reach's command line up to "--"; nil to run bare
	report  string   // where reach writes its report
	timeout time.Duration
}

// run runs the case's binary as spec says and returns its outcome.
func (w *workspace) run(ctx context.Context, spec runSpec) (*Outcome, error) {
	args := []string{}
	if w.c.Test {
		args = append(args, "-test.v", "-test.count=1", "-test.timeout=10m")
		if spec.covDir != "" {
			args = append(args, "-test.gocoverdir="+spec.covDir)
		}
	}
	args = append(args, w.c.Args...)
	argv := append([]string{spec.bin}, args...)
	if spec.reach != nil {
		argv = append(append(append([]string{}, spec.reach...), "-o", spec.report, "--"), argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(spec.timeout, 15*time.Minute))
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = w.runDir
	cmd.Env = os.Environ()
	if spec.covDir != "" {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+spec.covDir)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("run %s: timed out\n%s", strings.Join(argv, " "), tail(stderr.Bytes()))
	}
	code := cmd.ProcessState.ExitCode()
	if spec.reach != nil {
		if _, err := os.Stat(spec.report); err != nil {
			return nil, fmt.Errorf("%s wrote no report (exit %d): %s", argv[0], code, tail(stderr.Bytes()))
		}
	}
	return parseOutcome(code, stdout.Bytes(), w.c.Test), nil
}

// tail returns the last lines of a command's standard error.
func tail(b []byte) string {
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
