package execwatch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/reach-sca/reach/internal/procfs"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestWatcher starts a shell that runs two programs: the shell and
// both programs must be stopped at exec and reported, and run to the end
// once continued.
func TestWatcher(t *testing.T) {
	testprog.RequireRoot(t)
	w, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	cmd := exec.Command("/bin/sh", "-c", "/bin/true; /bin/echo hi")
	var out bytes.Buffer
	cmd.Stdout = &out
	done := startFollowed(t, w, cmd)

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
	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return string(st.State)
}

// execFromThread is a program that, run without arguments, executes
// itself with the argument "again" from a thread other than its main one,
// which prints "again" and exits.
const execFromThread = `package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// init keeps the main goroutine on the main thread: other goroutines run
// on other threads.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) > 1 {
		fmt.Println(os.Args[1])
		return
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		if syscall.Gettid() == os.Getpid() {
			errc <- fmt.Errorf("on the main thread")
			return
		}
		errc <- syscall.Exec("/proc/self/exe", []string{os.Args[0], "again"}, os.Environ())
	}()
	fmt.Fprintln(os.Stderr, <-errc)
	os.Exit(1)
}
`

// TestWatcherExecFromThread checks that a followed Go program that
// executes a program from a thread other than its main one (as the go
// command does when it switches to another toolchain) is stopped and
// reported at that exec too: the kernel ends the main thread before the
// exec, and the process must stay followed. Once it is gone, the sweeper
// forgets it.
func TestWatcherExecFromThread(t *testing.T) {
	testprog.RequireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(execFromThread), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "execthread")
	build := exec.Command("go", "build", "-o", bin, src)
	build.Env = append(os.Environ(), "GOFLAGS=", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	w, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := exec.Command(bin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	done := startFollowed(t, w, cmd)
	for n := 0; n < 2; n++ {
		select {
		case e := <-w.Execs():
			if e.PID != cmd.Process.Pid {
				t.Errorf("exec %d by process %d, want %d", n+1, e.PID, cmd.Process.Pid)
			}
			if err := w.Continue(e.PID); err != nil {
				t.Fatal(err)
			}
		case err := <-done:
			t.Fatalf("program exited (%v, %q) after %d execs reported, want 2: the exec from another thread was missed", err, stderr.String(), n)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d execs reported, want 2", n)
		}
	}
	if err := <-done; err != nil || out.String() != "again\n" {
		t.Fatalf("program: %v, output %q, stderr %q; want again", err, out.String(), stderr.String())
	}
	deadline := time.Now().Add(5 * sweepInterval)
	for {
		var v uint32
		err := w.followed.Lookup(uint32(cmd.Process.Pid), &v)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still followed (value %d, %v) %v after it exited", cmd.Process.Pid, v, err, 5*sweepInterval)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startFollowed starts cmd followed by w (this process is followed while
// it starts), and returns a channel that gets cmd.Wait's result.
func startFollowed(t *testing.T, w *Watcher, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := w.Follow(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	err := cmd.Start()
	if err2 := w.Unfollow(os.Getpid()); err2 != nil {
		t.Fatal(err2)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}
