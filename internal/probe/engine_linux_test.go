package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

func TestMain(m *testing.M) {
	if os.Getenv("REACH_PROBE_HELPER") != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	testprog.Cleanup()
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
	requireRoot(t)
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
	requireRoot(t)
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
				h.do("call 1000")
				noHit(t, e, 100*time.Millisecond)
				if n := total(t, e, h.pid(), 7); n != 1 {
					t.Errorf("count after removal: got %d, want 1", n)
				}
				if err := e.Disarm(context.Background(), h.pid(), 7); !errors.Is(err, ErrNotArmed) {
					t.Errorf("Disarm after one-shot removal: got %v, want ErrNotArmed", err)
				}
			})
		}
	}
}
