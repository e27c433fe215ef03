package probe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/probe/keeper"
	"github.com/reach-sca/reach/internal/testprog"
)

func buildHot(t testing.TB, v testprog.Variant) string {
	t.Helper()
	return testprog.Build(t, filepath.Join("testdata", "hot"), v)
}

// hot is a running testdata/hot process.
type hot struct {
	t    testing.TB
	path string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
}

func startHot(t testing.TB, path string) *hot {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Stderr = os.Stderr
	in, out := testprog.StartPiped(t, cmd)
	h := &hot{t: t, path: path, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line := h.line(); line != "ready" {
		t.Fatalf("fixture said %q, want ready", line)
	}
	return h
}

func (h *hot) pid() int { return h.cmd.Process.Pid }

func (h *hot) line() string {
	h.t.Helper()
	if !h.out.Scan() {
		h.t.Fatalf("fixture output ended: %v", h.out.Err())
	}
	return h.out.Text()
}

// do sends a command and returns its answer.
func (h *hot) do(format string, args ...any) string {
	h.t.Helper()
	if _, err := fmt.Fprintf(h.in, format+"\n", args...); err != nil {
		h.t.Fatal(err)
	}
	return h.line()
}

// codeByte reads the byte at file offset off of the executable as mapped in
// the process, through /proc/PID/mem.
func codeByte(pid int, exe string, off uint64) (byte, error) {
	b, err := testprog.CodeBytes(pid, exe, []uint64{off})
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// waitByte polls the code byte at off until it is want.
func waitByte(t testing.TB, pid int, exe string, off uint64, want byte) {
	t.Helper()
	if err := testprog.WaitCodeBytes(pid, exe, []testprog.CodeByte{{Off: off, Want: want}}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func uprobeEvents(t testing.TB) []byte {
	b, err := os.ReadFile("/sys/kernel/tracing/uprobe_events")
	if err != nil {
		b, _ = os.ReadFile("/sys/kernel/debug/tracing/uprobe_events")
	}
	return bytes.TrimSpace(b)
}

// keeperClient returns the engine's keeper client, or nil when it holds
// its links itself.
func (e *engine) keeperClient() *keeper.Client {
	if k, ok := e.holder.(keeperHolder); ok {
		return k.c
	}
	return nil
}
