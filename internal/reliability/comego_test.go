package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestExitWhileArming adds processes that exit at random moments while
// the session analyses and arms them (they call the vulnerable functions
// until they exit): Add either succeeds or says the process exited, never
// hangs, and the session's report stays whole.
func TestExitWhileArming(t *testing.T) {
	testprog.RequireRoot(t)
	n := envInt(t, "REACH_RELIABILITY_EXITS", 20)
	path := buildStress(t, testprog.Plain)
	s, err := observe.New(context.Background(), fixtureDB(t), observe.Options{
		Targets:      observe.SelectAll(),
		Report:       report.Report{Mode: "attach"},
		ReapInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	outcomes := map[string]int{}
	var observed []int
	for i := 0; i < n; i++ {
		cmd := exec.Command(path, "exit", strconv.Itoa(rng.IntN(40)))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		_, err := watchdog(30*time.Second, func() (struct{}, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return struct{}{}, s.Add(ctx, cmd.Process.Pid)
		})
		switch {
		case err == nil:
			outcomes["observed"]++
			observed = append(observed, cmd.Process.Pid)
		case errors.Is(err, observe.ErrExited):
			outcomes["exited"]++
			if !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
				t.Errorf("error %q does not name process %d", err, cmd.Process.Pid)
			}
		default:
			t.Fatalf("process %d: Add: %v, want success or ErrExited", cmd.Process.Pid, err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d exited with %v while reach armed it, want 0", cmd.Process.Pid, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r, err := s.Report(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if _, err := report.ReadJSON(&buf); err != nil {
		t.Fatalf("report: %v", err)
	}
	for _, pid := range observed {
		found := false
		for _, b := range r.Binaries {
			for _, p := range b.PIDs {
				found = found || p == pid
			}
		}
		if !found {
			t.Errorf("observed process %d is not in the report", pid)
		}
	}
	t.Logf("%d short-lived processes: %v", n, outcomes)
	figure(t, "exiting_processes", n)
}

// TestAttachBadPIDs runs reach attach on lists of processes that cannot
// be observed, alone and mixed with a good one: one clear message per bad
// PID, a correct report for the rest.
func TestAttachBadPIDs(t *testing.T) {
	testprog.RequireRoot(t)
	reach := buildReach(t)
	path := buildStress(t, testprog.Plain)
	good := startStress(t, path)
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	goneKnown := gone.Process.Pid // exited and reaped
	const never = 99999999        // above any pid_max
	goodPID, sleepPID := strconv.Itoa(good.pid()), strconv.Itoa(sleep.Process.Pid)

	tests := []struct {
		name string
		args []string
		code int
		// stderr must hold these, one message per bad PID
		want []string
		// the report: binary path to PIDs; nil when no report is expected
		report map[string][]int
	}{
		{"nonexistent", []string{strconv.Itoa(never)}, 1,
			[]string{"process 99999999: no such process", "no process could be observed"}, map[string][]int{}},
		{"exited", []string{strconv.Itoa(goneKnown)}, 1,
			[]string{fmt.Sprintf("process %d:", goneKnown), "no process could be observed"}, map[string][]int{}},
		{"not go", []string{sleepPID}, 1,
			[]string{"process " + sleepPID, "not a Go binary"}, map[string][]int{}},
		{"kernel thread", []string{"2"}, 1,
			[]string{"process 2 has no executable"}, map[string][]int{}},
		{"mixed", []string{strconv.Itoa(never), goodPID, sleepPID, "2"}, 3,
			[]string{"process 99999999: no such process", "process " + sleepPID, "not a Go binary", "process 2 has no executable", "observing 1 process"},
			map[string][]int{path: {good.pid()}}},
		{"not a number", []string{goodPID, "12x"}, 2, []string{`"12x" is not a process ID`}, nil},
		{"zero", []string{"0"}, 2, []string{`"0" is not a process ID`}, nil},
		{"negative", []string{"--", "-5"}, 2, []string{`"-5" is not a process ID`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"attach", "-db", dbDir(t), "-format", "json", "-for", "500ms"}, tt.args...)
			cmd := exec.Command(reach, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_, err := watchdog(60*time.Second, func() (struct{}, error) { return struct{}{}, cmd.Run() })
			if errors.Is(err, errHung) {
				cmd.Process.Kill()
				t.Fatal(err)
			}
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", got, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("reach crashed:\n%s", stderr.String())
			}
			if tt.report == nil {
				if stdout.Len() > 0 {
					t.Errorf("a usage error wrote a report:\n%s", stdout.String())
				}
				return
			}
			st, err := checkReport(&stdout, tt.report)
			if err != nil {
				t.Fatalf("report: %v\n%s", err, stdout.String())
			}
			if len(tt.report) > 0 && st.reached == 0 {
				t.Errorf("the good process reached nothing in 500ms")
			}
		})
	}
	if !good.alive() {
		t.Fatal("the good process died")
	}
	sums := good.stop(2 * time.Minute)
	for k, s := range sums {
		if want := referenceChecksum(t, path); s != want {
			t.Fatalf("round %d: checksum %s, want %s", k+1, s, want)
		}
	}
	figure(t, "bad_pid_cases", len(tests))
	figure(t, "malformed_inputs", len(tests))
}
