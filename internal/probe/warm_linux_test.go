package probe

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

// fdSize returns the size of this process's descriptor table.
func fdSize(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

func TestGrowFDTable(t *testing.T) {
	const n = 4096
	before := fdSize(t)
	if before >= n {
		// Another test grew it: check in a process of its own.
		cmd := exec.Command(os.Args[0], "-test.run=^TestGrowFDTable$", "-test.count=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("TestGrowFDTable in a fresh process: %v\n%s", err, out)
		}
		return
	}
	growFDTable(n)
	if got := fdSize(t); got < n {
		t.Errorf("FDSize after growFDTable(%d): %d (was %d)", n, got, before)
	}
	// The table keeps its size, and the descriptor used to grow it is
	// closed: the next one opened is a low one.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fd := f.Fd(); fd >= 64 {
		t.Errorf("next descriptor %d: the one that grew the table was not closed", fd)
	}
}

// TestWarm checks that warming leaves no probe in a process running the
// file, and that the engine arms and fires as usual after it, with and
// without a keeper.
func TestWarm(t *testing.T) {
	testprog.RequireRoot(t)
	exe := buildHot(t, variants[0])
	fns := locate(t, exe, "main.work")
	site := fns["main.work"].push
	for _, keeper := range []bool{true, false} {
		t.Run(fmt.Sprintf("keeper=%v", keeper), func(t *testing.T) {
			e := newTestEngine(t, Options{NoKeeper: !keeper})
			h := startHot(t, exe)
			before, err := codeByte(h.pid(), exe, site.Offset)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(exe)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			e.Warm(ctx, exe)
			e.Warm(ctx, "/nonexistent/reach-warm") // fails quietly
			// The warm link sits at the file's last byte, which nothing
			// maps as code: the process's code is untouched meanwhile.
			for range 20 {
				if b, _ := codeByte(h.pid(), exe, site.Offset); b != before {
					t.Fatalf("code byte at the site changed to %#x while warming", b)
				}
				time.Sleep(time.Millisecond)
			}
			if _, err := codeByte(h.pid(), exe, uint64(fi.Size()-1)); err == nil {
				t.Fatalf("the file's last byte is mapped in process %d: the warm link could fire", h.pid())
			}
			if err := e.Arm(ctx, ProcessSpec{PID: h.pid(), Path: exe, Mode: OneShot,
				Groups: []Group{{ID: 1, Sites: []Site{site}}}}); err != nil {
				t.Fatal(err)
			}
			h.do("call 1")
			if hit := waitHit(t, e); hit.Group != 1 || hit.PID != h.pid() {
				t.Errorf("hit after warming: %+v", hit)
			}
			// Close waits for the warming to end.
			start := time.Now()
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Close took %v", d)
			}
		})
	}
}
