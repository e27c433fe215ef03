package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

func TestMain(m *testing.M) {
	RunKeeperIfRequested()
	if os.Getenv("REACH_PROBE_HELPER") != "" {
		os.Exit(helperMain())
	}
	if os.Getenv("REACH_PROBE_CYCLE") != "" {
		os.Exit(cycleHelperMain())
	}
	if os.Getenv("REACH_PROBE_GROW") != "" {
		os.Exit(growHelperMain())
	}
	code := m.Run()
	testprog.Cleanup()
	// Every keeper exits with its engine, even a killed one.
	stray := strayKeepers()
	for deadline := time.Now().Add(5 * time.Second); len(stray) > 0 && time.Now().Before(deadline); stray = strayKeepers() {
		time.Sleep(50 * time.Millisecond)
	}
	if len(stray) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: processes %v still run this test binary (stray probe keepers)\n", stray)
		code = 1
	}
	os.Exit(code)
}

// helperMain arms a probe on the process REACH_PROBE_HELPER_PID and waits
// to be killed.
func helperMain() int {
	pid, _ := strconv.Atoi(os.Getenv("REACH_PROBE_HELPER_PID"))
	off, _ := strconv.ParseUint(os.Getenv("REACH_PROBE_HELPER_OFFSET"), 0, 64)
	ctx := context.Background()
	e, err := New(ctx, Options{Classic: os.Getenv("REACH_PROBE_HELPER_CLASSIC") != ""})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	err = e.Arm(ctx, ProcessSpec{PID: pid, Path: os.Getenv("REACH_PROBE_HELPER_EXE"), Mode: Count,
		Groups: []Group{{ID: 1, Sites: []Site{{Offset: off, Kind: SitePushBP}}}}})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("armed")
	time.Sleep(time.Hour)
	return 0
}

func newTestEngine(t *testing.T, opts Options) Engine {
	t.Helper()
	testprog.RequireRoot(t)
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func waitHit(t *testing.T, e Engine) Hit {
	t.Helper()
	select {
	case h, ok := <-e.Hits():
		if !ok {
			t.Fatal("Hits closed")
		}
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("no hit within 5s")
	}
	return Hit{}
}

func noHit(t *testing.T, e Engine, wait time.Duration) {
	t.Helper()
	select {
	case h := <-e.Hits():
		t.Fatalf("unexpected hit %+v", h)
	case <-time.After(wait):
	}
}

func total(t *testing.T, e Engine, pid int, group uint64) uint64 {
	t.Helper()
	counts, err := e.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range counts {
		if c.PID == pid && c.Group == group {
			n += c.Hits
		}
	}
	return n
}

var variants = []testprog.Variant{testprog.Plain, testprog.PIE}

func TestOneShot(t *testing.T) {
	testprog.RequireRoot(t)
	for _, v := range variants {
		for _, kind := range []SiteKind{SitePushBP, SiteEntry} {
			t.Run(v.Name+"/"+kind.String(), func(t *testing.T) {
				exe := buildHot(t, v)
				fns := locate(t, exe, "main.work", "main.caller")
				work, caller := fns["main.work"], fns["main.caller"]
				site := work.push
				if kind == SiteEntry {
					site = work.entry
				}
				e := newTestEngine(t, Options{})
				h := startHot(t, exe)
				before, err := codeByte(h.pid(), exe, site.Offset)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: OneShot,
					Groups: []Group{{ID: 7, Sites: []Site{site}}}}); err != nil {
					t.Fatal(err)
				}
				if b, _ := codeByte(h.pid(), exe, site.Offset); b != 0xcc {
					t.Errorf("armed code byte: got %#x, want 0xcc", b)
				}
				h.do("call 1")
				hit := waitHit(t, e)
				if hit.PID != h.pid() || hit.Group != 7 || hit.Site != 0 || hit.Kind != kind || hit.Callsite || hit.Count != 1 {
					t.Errorf("hit: %+v", hit)
				}
				if pc := hit.IP - hit.Bias; pc != site.PC {
					t.Errorf("IP - Bias = %#x, want the site's PC %#x", pc, site.PC)
				}
				if ret := hit.Return - hit.Bias; ret <= caller.lo || ret > caller.hi {
					t.Errorf("return address %#x (link-time %#x) not in main.caller [%#x, %#x)", hit.Return, ret, caller.lo, caller.hi)
				}
				if len(hit.Stack) == 0 || hit.Stack[0] != hit.IP {
					t.Errorf("stack %x does not start at IP %#x", hit.Stack, hit.IP)
				}
				if d := time.Since(hit.Time); d < 0 || d > 10*time.Second {
					t.Errorf("hit time %v is %v from now", hit.Time, d)
				}
				// One-shot: the probe goes away by itself.
				waitByte(t, h.pid(), exe, site.Offset, before)
				// At a function's entry one call can hit twice: when the
				// goroutine's stack must grow (after a GC shrank it), the
				// prologue calls morestack and runs the entry again.
				first := total(t, e, h.pid(), 7)
				if first != 1 && (kind != SiteEntry || first != 2) {
					t.Errorf("count of one call: got %d, want 1 (or 2 at an entry site)", first)
				}
				if first == 2 {
					t.Logf("one call hit the entry twice (morestack)")
				}
				h.do("call 1000")
				noHit(t, e, 100*time.Millisecond)
				if n := total(t, e, h.pid(), 7); n != first {
					t.Errorf("count after removal: got %d, want %d as before it", n, first)
				}
				if err := e.Disarm(context.Background(), h.pid(), 7); !errors.Is(err, ErrNotArmed) {
					t.Errorf("Disarm after one-shot removal: got %v, want ErrNotArmed", err)
				}
			})
		}
	}
}

func TestCount(t *testing.T) {
	testprog.RequireRoot(t)
	for _, classic := range []bool{false, true} {
		name := "multi"
		if classic {
			name = "classic"
		}
		t.Run(name, func(t *testing.T) {
			exe := buildHot(t, testprog.Plain)
			fns := locate(t, exe, "main.work", "main.helper", "main.caller", "main.caller2")
			work, helper := fns["main.work"], fns["main.helper"]
			if helper.push.Offset != 0 {
				t.Fatalf("main.helper has a PUSH RBP at %#x; the fixture expects a frameless leaf", helper.push.PC)
			}
			e := newTestEngine(t, Options{Classic: classic})
			h := startHot(t, exe)
			err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count, Groups: []Group{
				{ID: 1, Sites: []Site{work.push}},
				{ID: 2, Sites: []Site{helper.entry}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			const n, g = 1000, 4
			h.do("par %d %d", n, g)
			h.do("call2 %d", n)

			// Group 1: a first hit from caller, a new callsite in caller2.
			// Group 2: a first hit from work, its only caller, and a new
			// stack when work is called from caller2.
			var hits []Hit
			for range 4 {
				hits = append(hits, waitHit(t, e))
			}
			noHit(t, e, 200*time.Millisecond)
			var first1, call1, first2, call2 int
			for _, hit := range hits {
				ret := hit.Return - hit.Bias
				switch {
				case hit.Group == 1 && !hit.Callsite:
					first1++
					if c := fns["main.caller"]; ret <= c.lo || ret > c.hi {
						t.Errorf("first hit of work returns to %#x, not into main.caller", ret)
					}
				case hit.Group == 1 && hit.Callsite:
					call1++
					if c := fns["main.caller2"]; ret <= c.lo || ret > c.hi {
						t.Errorf("callsite hit of work returns to %#x, not into main.caller2", ret)
					}
					if hit.Count != g*n+1 {
						t.Errorf("callsite hit count %d, want %d", hit.Count, g*n+1)
					}
				case hit.Group == 2:
					if hit.Callsite {
						call2++
					} else {
						first2++
					}
					if ret <= work.lo || ret > work.hi {
						t.Errorf("hit of helper returns to %#x, not into main.work", ret)
					}
				default:
					t.Errorf("unexpected hit %+v", hit)
				}
				if hit.PID != h.pid() {
					t.Errorf("hit pid %d, want %d", hit.PID, h.pid())
				}
			}
			if first1 != 1 || call1 != 1 || first2 != 1 || call2 != 1 {
				t.Errorf("hits: %d first and %d callsite for work, %d and %d for helper; want 1 each", first1, call1, first2, call2)
			}
			want := uint64(g*n + n)
			if got := total(t, e, h.pid(), 1); got != want {
				t.Errorf("work counted %d times, want %d", got, want)
			}
			if got := total(t, e, h.pid(), 2); got != want {
				t.Errorf("helper counted %d times, want %d", got, want)
			}

			// Disarm keeps the counts, restores the code, and stops counting.
			if err := e.Disarm(context.Background(), h.pid(), 1); err != nil {
				t.Fatal(err)
			}
			waitByte(t, h.pid(), exe, work.push.Offset, work.original)
			h.do("call %d", n)
			if got := total(t, e, h.pid(), 1); got != want {
				t.Errorf("work counted %d times after Disarm, want %d", got, want)
			}
			if got := total(t, e, h.pid(), 2); got != want+n {
				t.Errorf("helper counted %d times, want %d", got, want+n)
			}

			// Arm it again: counting resumes where it stopped.
			err = e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count, Groups: []Group{
				{ID: 1, Sites: []Site{work.push}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			h.do("call %d", n)
			if got := total(t, e, h.pid(), 1); got != want+n {
				t.Errorf("work counted %d times after arming again, want %d", got, want+n)
			}
		})
	}
}

// TestOtherProcess checks that a probe armed for one process neither counts
// nor changes another process running the same file.
func TestOtherProcess(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	watched, other := startHot(t, exe), startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: watched.pid(), Path: exe, Mode: Count,
		Groups: []Group{{ID: 1, Sites: []Site{work.push}}}}); err != nil {
		t.Fatal(err)
	}
	if b, err := codeByte(other.pid(), exe, work.push.Offset); err != nil || b != work.original {
		t.Errorf("other process's code byte: %#x, %v; want %#x", b, err, work.original)
	}
	other.do("call 100")
	watched.do("call 10")
	if n := total(t, e, watched.pid(), 1); n != 10 {
		t.Errorf("watched process: %d hits, want 10", n)
	}
	if n := total(t, e, other.pid(), 1); n != 0 {
		t.Errorf("other process: %d hits, want 0", n)
	}
}

func TestArmErrors(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	h := startHot(t, exe)
	good := Group{ID: 1, Sites: []Site{work.push}}
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{good}}); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec ProcessSpec
		is   error  // errors.Is target, or nil
		want string // in the message
	}{
		{"no path", ProcessSpec{PID: h.pid(), Groups: []Group{good}}, nil, "no executable path"},
		{"missing file", ProcessSpec{PID: h.pid(), Path: exe + ".missing", Groups: []Group{good}}, nil, "no such file"},
		{"negative pid", ProcessSpec{PID: -1, Path: exe, Groups: []Group{good}}, nil, "pid -1"},
		{"dead pid", ProcessSpec{PID: dead.Process.Pid, Path: exe, Groups: []Group{{ID: 2, Sites: []Site{work.push}}}}, nil, "no such process"},
		{"empty group", ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{{ID: 3}}}, nil, "no sites"},
		{"offset 0", ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{{ID: 4, Sites: []Site{{}}}}}, nil, "offset 0"},
		{"bad kind", ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{{ID: 5, Sites: []Site{{Offset: work.push.Offset, Kind: 9}}}}}, nil, "unknown kind"},
		{"bad mode", ProcessSpec{PID: h.pid(), Path: exe, Mode: 7, Groups: []Group{good}}, nil, "unknown mode"},
		{"armed twice", ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{good}}, ErrArmed, "group 1"},
		{"offset past the file", ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{{ID: 6, Sites: []Site{{Offset: 1 << 40}}}}}, nil, "group 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.Arm(context.Background(), tt.spec)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if err := e.Disarm(context.Background(), h.pid(), 99); !errors.Is(err, ErrNotArmed) {
		t.Errorf("Disarm of an unknown group: %v, want ErrNotArmed", err)
	}
	// A failed group does not stay armed: arming it properly works.
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{{ID: 6, Sites: []Site{work.entry}}}}); err != nil {
		t.Errorf("arm group 6 after a failed attempt: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Groups: []Group{{ID: 7, Sites: []Site{work.entry}}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Arm after Close: %v, want ErrClosed", err)
	}
	if _, ok := <-e.Hits(); ok {
		t.Error("Hits still open after Close")
	}
	// Close removed the probes.
	waitByte(t, h.pid(), exe, work.push.Offset, work.original)
}

// TestKilledOwner checks that probes go away with the process that armed
// them, even when it is killed with SIGKILL and cleans up nothing.
func TestKilledOwner(t *testing.T) {
	testprog.RequireRoot(t)
	for _, classic := range []string{"", "1"} {
		t.Run("classic="+classic, func(t *testing.T) {
			exe := buildHot(t, testprog.Plain)
			work := locate(t, exe, "main.work")["main.work"]
			h := startHot(t, exe)
			events := uprobeEvents(t)

			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			owner := exec.Command(self)
			owner.Env = append(os.Environ(),
				"REACH_PROBE_HELPER=1",
				fmt.Sprintf("REACH_PROBE_HELPER_PID=%d", h.pid()),
				"REACH_PROBE_HELPER_EXE="+exe,
				fmt.Sprintf("REACH_PROBE_HELPER_OFFSET=%#x", work.push.Offset),
				"REACH_PROBE_HELPER_CLASSIC="+classic,
			)
			out, err := owner.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			owner.Stderr = os.Stderr
			if err := owner.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "armed\n" {
				t.Fatalf("helper said %q, want armed", line)
			}
			if b, err := codeByte(h.pid(), exe, work.push.Offset); err != nil || b != 0xcc {
				t.Fatalf("armed code byte: %#x, %v; want 0xcc", b, err)
			}
			h.do("call 10") // the probe fires into the helper's program

			if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			owner.Wait()
			waitByte(t, h.pid(), exe, work.push.Offset, work.original)
			if after := uprobeEvents(t); string(after) != string(events) {
				t.Errorf("uprobe_events changed:\nbefore: %s\nafter: %s", events, after)
			}
			if got := h.do("call 10"); !strings.HasPrefix(got, "ok ") {
				t.Errorf("fixture after the owner died: %q", got)
			}
		})
	}
}

// TestLostRecords fills a small ring buffer while nobody reads Hits: the
// first hits the kernel could not queue come back as Lost hits from the
// counters, and their one-shot groups are removed all the same.
func TestLostRecords(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{RingBytes: 4096, HitBuffer: 1, SweepInterval: 20 * time.Millisecond})
	h := startHot(t, exe)
	const groups = 40 // 40 records of 584 bytes do not fit in 4 KiB
	spec := ProcessSpec{PID: h.pid(), Path: exe, Mode: OneShot}
	for i := range groups {
		spec.Groups = append(spec.Groups, Group{ID: uint64(i), Sites: []Site{work.push}})
	}
	if err := e.Arm(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	h.do("call 1")
	seen := map[uint64]int{}
	var lost int
	for len(seen) < groups {
		hit := waitHit(t, e)
		seen[hit.Group]++
		if hit.Lost {
			lost++
			if hit.Count != 1 || hit.PID != h.pid() {
				t.Errorf("lost hit %+v", hit)
			}
		}
	}
	if lost == 0 {
		t.Error("no hit was lost; the test did not fill the ring buffer")
	}
	t.Logf("%d of %d first hits came from the counters", lost, groups)
	waitByte(t, h.pid(), exe, work.push.Offset, work.original)
	for i := range groups {
		if err := e.Disarm(context.Background(), h.pid(), uint64(i)); !errors.Is(err, ErrNotArmed) {
			t.Errorf("group %d still armed: %v", i, err)
		}
	}
}

func TestDisarmProcess(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	fns := locate(t, exe, "main.work", "main.helper", "main.caller")
	e := newTestEngine(t, Options{})
	h := startHot(t, exe)
	var groups []Group
	for i, name := range []string{"main.work", "main.helper", "main.caller"} {
		s := fns[name].push
		if s.Offset == 0 {
			s = fns[name].entry
		}
		groups = append(groups, Group{ID: uint64(i), Sites: []Site{s}})
	}
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count, Groups: groups}); err != nil {
		t.Fatal(err)
	}
	h.do("call 5")
	if err := e.DisarmProcess(context.Background(), h.pid()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main.work", "main.helper", "main.caller"} {
		f := fns[name]
		off := f.push.Offset
		if off == 0 {
			off = f.entry.Offset
		}
		if b, err := codeByte(h.pid(), exe, off); err != nil || b != f.original {
			t.Errorf("%s: code byte %#x, %v after DisarmProcess; want %#x", name, b, err, f.original)
		}
	}
	h.do("call 5")
	for i, want := range []uint64{5, 5, 1} {
		if got := total(t, e, h.pid(), uint64(i)); got != want {
			t.Errorf("group %d: %d hits, want %d", i, got, want)
		}
		if err := e.Disarm(context.Background(), h.pid(), uint64(i)); !errors.Is(err, ErrNotArmed) {
			t.Errorf("group %d after DisarmProcess: %v, want ErrNotArmed", i, err)
		}
	}
}

// TestOneShotBurst removes a one-shot probe while the function runs in a
// tight loop: the calls made before the removal completes are counted, and
// none after.
func TestOneShotBurst(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	h := startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: OneShot,
		Groups: []Group{{ID: 1, Sites: []Site{work.push}}}}); err != nil {
		t.Fatal(err)
	}
	const calls = 300_000
	h.do("call %d", calls)
	if hit := waitHit(t, e); hit.Count != 1 || hit.Callsite {
		t.Errorf("first hit %+v", hit)
	}
	waitByte(t, h.pid(), exe, work.push.Offset, work.original)
	n := total(t, e, h.pid(), 1)
	if n < 1 || n > calls {
		t.Fatalf("%d calls counted, want 1 to %d", n, calls)
	}
	t.Logf("%d of %d calls counted before the one-shot probe was gone", n, calls)
	h.do("call %d", calls)
	if m := total(t, e, h.pid(), 1); m != n {
		t.Errorf("%d calls counted after removal, want %d", m, n)
	}
}

// TestFlush checks that after Flush every queued hit is on Hits, and that
// Flush counts the hits delivered.
func TestFlush(t *testing.T) {
	testprog.RequireRoot(t)
	exe := buildHot(t, variants[0])
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	h := startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count,
		Groups: []Group{{ID: 3, Sites: []Site{work.push}}}}); err != nil {
		t.Fatal(err)
	}
	h.do("call 10")
	n, err := e.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Flush: %d hits delivered, want 1 (the first of 10 calls from one caller)", n)
	}
	select {
	case hit := <-e.Hits():
		if hit.Group != 3 || hit.PID != h.pid() {
			t.Errorf("hit %+v", hit)
		}
	default:
		t.Fatal("Flush returned before its hit was on Hits")
	}
	if n, err := e.Flush(context.Background()); err != nil || n != 1 {
		t.Errorf("second Flush = %d, %v; want 1, nil", n, err)
	}
}

// TestDisarmGone checks the removal of the probes of processes that are
// gone: their counts are final, the keeper closes their links on its own,
// and the engine does not wait for it to exit.
func TestDisarmGone(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	kpid := e.(*engine).keeperClient().PID()
	ctx := context.Background()
	var pids []int
	for range 3 {
		h := startHot(t, exe)
		if err := e.Arm(ctx, ProcessSpec{PID: h.pid(), Path: exe, Mode: Count,
			Groups: []Group{{ID: 1, Sites: []Site{work.push}}, {ID: 2, Sites: []Site{work.entry}}}}); err != nil {
			t.Fatal(err)
		}
		h.do("call 4")
		h.cmd.Process.Kill()
		h.cmd.Wait()
		if !processGone(h.pid()) {
			t.Fatalf("process %d is not gone after it was waited for", h.pid())
		}
		pids = append(pids, h.pid())
	}
	if processGone(os.Getpid()) || processGone(kpid) {
		t.Fatal("processGone says a running process is gone")
	}
	if n := bpfLinks(t, kpid); n != 6 {
		t.Fatalf("the keeper holds %d links, want 6", n)
	}
	// One process with DisarmProcess, one with Disarm, one left to Close.
	if err := e.DisarmProcess(ctx, pids[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.Disarm(ctx, pids[1], 1); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids[:2] {
		if got := total(t, e, pid, 1); got != 4 {
			t.Errorf("process %d: %d calls counted at the push-bp site, want 4", pid, got)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); bpfLinks(t, kpid) != 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the keeper still holds %d links, want 3", bpfLinks(t, kpid))
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(kpid, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the keeper (process %d) still runs 10s after Close", kpid)
		}
	}
}
