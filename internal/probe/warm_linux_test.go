package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/probe/keeper"
	"github.com/reach-sca/reach/internal/testprog"
)

// fdSize returns the size of this process's descriptor table.
func fdSize() (int, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no FDSize in /proc/self/status")
}

// growHelperMain grows its fresh descriptor table to
// REACH_PROBE_GROW descriptors and prints "FDSIZE_BEFORE FDSIZE_AFTER
// NEXT_FD": the table's size before and after, and the descriptor the next
// open gets.
func growHelperMain() int {
	n, err := strconv.Atoi(os.Getenv("REACH_PROBE_GROW"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	before, err := fdSize()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	keeper.GrowFDTable(n)
	after, err := fdSize()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(before, after, f.Fd())
	return 0
}

// TestGrowFDTable grows the table of a fresh process, whose table no other
// test grew.
func TestGrowFDTable(t *testing.T) {
	const n = 4096
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("REACH_PROBE_GROW=%d", n))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	var before, after, next int
	if _, err := fmt.Sscan(string(out), &before, &after, &next); err != nil {
		t.Fatalf("the helper printed %q: %v", out, err)
	}
	if before >= n {
		t.Fatalf("a fresh process's table holds %d descriptors already: nothing to test", before)
	}
	if after < n {
		t.Errorf("FDSize after keeper.GrowFDTable(%d): %d (was %d)", n, after, before)
	}
	// The table keeps its size, and the descriptor used to grow it is
	// closed: the next one opened is a low one.
	if next >= 64 {
		t.Errorf("next descriptor %d: the one that grew the table was not closed", next)
	}
}

// TestWarm checks that warming leaves no probe in a process running the
// file, and that the engine arms and fires as usual after it, with and
// without a keeper, and with classic uprobes, which it leaves alone.
func TestWarm(t *testing.T) {
	testprog.RequireRoot(t)
	exe := buildHot(t, variants[0])
	fns := locate(t, exe, "main.work")
	site := fns["main.work"].push
	for _, opts := range []Options{{}, {NoKeeper: true}, {Classic: true}} {
		t.Run(fmt.Sprintf("nokeeper=%v,classic=%v", opts.NoKeeper, opts.Classic), func(t *testing.T) {
			e := newTestEngine(t, opts)
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
