package probe

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestExecWatcher starts a shell that runs two programs: the shell and
// both programs must be stopped at exec and reported, and run to the end
// once continued.
func TestExecWatcher(t *testing.T) {
	testprog.RequireRoot(t)
	w, err := NewExecWatcher(context.Background(), ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	cmd := exec.Command("/bin/sh", "-c", "/bin/true; /bin/echo hi")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := w.Follow(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	err = cmd.Start()
	if err2 := w.Unfollow(os.Getpid()); err2 != nil {
		t.Fatal(err2)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var pids []int
	for len(pids) < 3 {
		select {
		case e := <-w.Execs():
			if len(pids) == 0 && e.PID != cmd.Process.Pid {
				t.Fatalf("first exec by process %d, want the started shell %d", e.PID, cmd.Process.Pid)
			}
			// The stop signal is pending when the exec is reported; the
			// process stops on its way back to user space.
			st := procState(t, e.PID)
			for deadline := time.Now().Add(2 * time.Second); st != "T" && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				st = procState(t, e.PID)
			}
			if st != "T" {
				t.Errorf("process %d in state %q, want stopped (T)", e.PID, st)
			}
			pids = append(pids, e.PID)
			if err := w.Continue(e.PID); err != nil {
				t.Fatal(err)
			}
		case err := <-done:
			t.Fatalf("shell exited (%v) after %d execs, want 3", err, len(pids))
		case <-time.After(10 * time.Second):
			t.Fatalf("%d execs reported, want 3", len(pids))
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shell did not finish")
	}
	if out.String() != "hi\n" {
		t.Errorf("shell output %q, want %q", out.String(), "hi\n")
	}
	// After Unfollow, the test's own children are not stopped.
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.Execs():
		t.Errorf("process %d reported after Unfollow", e.PID)
	case <-time.After(200 * time.Millisecond):
	}
}

func procState(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	return string(f[0])
}
