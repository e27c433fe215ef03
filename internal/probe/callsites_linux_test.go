package probe

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

// callsiteCounts returns the callsite counts of a group in a process, by
// link-time return address: that of the hit that reported each key.
func callsiteCounts(t *testing.T, e Engine, pid int, group uint64, reported map[[2]uint64]Hit) map[uint64]uint64 {
	t.Helper()
	counts, err := e.CallsiteCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]uint64{}
	for _, c := range counts {
		if c.PID == pid && c.Group == group {
			if c.Site != 0 {
				t.Errorf("callsite count of site %d; the group has one site", c.Site)
			}
			h, ok := reported[[2]uint64{c.Group, c.Key}]
			if !ok {
				t.Errorf("callsite count %+v was never reported as a hit", c)
				continue
			}
			out[h.Return-h.Bias] += c.Hits
		}
	}
	return out
}

// byCaller sums link-time callsite counts per function of fns that the
// return address falls in, and fails on any other return address.
func byCaller(t *testing.T, counts map[uint64]uint64, fns map[string]fn) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for ret, n := range counts {
		name := ""
		for _, f := range fns {
			if ret > f.lo && ret <= f.hi {
				name = f.name
			}
		}
		if name == "" {
			t.Errorf("callsite count %d with return address %#x in none of the functions", n, ret)
			continue
		}
		out[name] += n
	}
	return out
}

// TestCallsiteCounts: in count mode the kernel counts every execution per
// stack, exactly, also when goroutines race through a callsite's first
// execution, and keeps the counts when the group is disarmed. Calls from
// the same caller with different stacks (main.caller from main.main and
// from a goroutine) are counted apart.
func TestCallsiteCounts(t *testing.T) {
	testprog.RequireRoot(t)
	for _, v := range variants {
		for _, classic := range []bool{false, true} {
			name := v.Name + "/multi"
			if classic {
				name = v.Name + "/classic"
			}
			t.Run(name, func(t *testing.T) {
				exe := buildHot(t, v)
				fns := locate(t, exe, "main.work", "main.helper", "main.caller", "main.caller2")
				work, helper := fns["main.work"], fns["main.helper"]
				e := newTestEngine(t, Options{Classic: classic})
				h := startHot(t, exe)
				spec := ProcessSpec{PID: h.pid(), Path: exe, Mode: Count, Groups: []Group{
					{ID: 1, Sites: []Site{work.push}},
					{ID: 2, Sites: []Site{helper.entry}},
				}}
				if err := e.Arm(context.Background(), spec); err != nil {
					t.Fatal(err)
				}
				const n1, n2, par, g = 1234, 567, 2000, 4
				h.do("call %d", n1)
				h.do("call2 %d", n2)
				h.do("par %d %d", par, g) // g goroutines race through caller's callsite

				// Every callsite count has a hit that reported it: one per
				// stack, three of work's (caller from main and from the
				// goroutines, caller2) and three of helper's (work's).
				reported := map[[2]uint64]Hit{}
				for range 6 {
					hit := waitHit(t, e)
					k := [2]uint64{hit.Group, hit.Key}
					if _, ok := reported[k]; ok {
						t.Errorf("stack key %#x of group %d reported twice", hit.Key, hit.Group)
					}
					reported[k] = hit
				}
				noHit(t, e, 100*time.Millisecond)
				counts, err := e.CallsiteCounts(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if len(counts) != 6 {
					t.Errorf("%d callsite counts, want 6: %+v", len(counts), counts)
				}

				want := map[string]uint64{"main.caller": n1 + par*g, "main.caller2": n2}
				got := byCaller(t, callsiteCounts(t, e, h.pid(), 1, reported), fns)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("work's callsite counts %v, want %v", got, want)
				}
				if n := total(t, e, h.pid(), 1); n != n1+n2+par*g {
					t.Errorf("work counted %d times, want %d", n, n1+n2+par*g)
				}
				wantHelper := map[string]uint64{"main.work": n1 + n2 + par*g}
				if got := byCaller(t, callsiteCounts(t, e, h.pid(), 2, reported), fns); fmt.Sprint(got) != fmt.Sprint(wantHelper) {
					t.Errorf("helper's callsite counts %v, want %v", got, wantHelper)
				}

				// Disarm keeps the callsite counts; arming again adds to them.
				if err := e.Disarm(context.Background(), h.pid(), 1); err != nil {
					t.Fatal(err)
				}
				h.do("call2 %d", n2)
				if got := byCaller(t, callsiteCounts(t, e, h.pid(), 1, reported), fns); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("work's callsite counts after Disarm %v, want %v", got, want)
				}
				wantHelper["main.work"] += n2
				if got := byCaller(t, callsiteCounts(t, e, h.pid(), 2, reported), fns); fmt.Sprint(got) != fmt.Sprint(wantHelper) {
					t.Errorf("helper's callsite counts %v, want %v", got, wantHelper)
				}
				if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count, Groups: spec.Groups[:1]}); err != nil {
					t.Fatal(err)
				}
				h.do("call2 %d", n2)
				want["main.caller2"] += n2
				wantHelper["main.work"] += n2
				if err := e.DisarmProcess(context.Background(), h.pid()); err != nil {
					t.Fatal(err)
				}
				if got := byCaller(t, callsiteCounts(t, e, h.pid(), 1, reported), fns); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("work's callsite counts after arming again %v, want %v", got, want)
				}
				if got := byCaller(t, callsiteCounts(t, e, h.pid(), 2, reported), fns); fmt.Sprint(got) != fmt.Sprint(wantHelper) {
					t.Errorf("helper's callsite counts after DisarmProcess %v, want %v", got, wantHelper)
				}
			})
		}
	}
}

// TestCallsiteCountsOneShot: one-shot groups count no callsites.
func TestCallsiteCountsOneShot(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	h := startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: OneShot,
		Groups: []Group{{ID: 1, Sites: []Site{work.push}}}}); err != nil {
		t.Fatal(err)
	}
	h.do("call 10")
	waitHit(t, e)
	waitByte(t, h.pid(), exe, work.push.Offset, work.original)
	counts, err := e.CallsiteCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 0 {
		t.Errorf("one-shot callsite counts %+v, want none", counts)
	}
	if n := total(t, e, h.pid(), 1); n == 0 {
		t.Error("the one-shot hit was not counted")
	}
}

// TestKeyByReturn: once told that a return address decides the callsite,
// the kernel counts the site's executions with that return address under
// the return address, whatever their stack, and reports no new stack of
// it; other return addresses are still counted by stack.
func TestKeyByReturn(t *testing.T) {
	testprog.RequireRoot(t)
	exe := buildHot(t, testprog.Plain)
	fns := locate(t, exe, "main.work", "main.caller", "main.caller2")
	e := newTestEngine(t, Options{})
	h := startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count,
		Groups: []Group{{ID: 1, Sites: []Site{fns["main.work"].push}}}}); err != nil {
		t.Fatal(err)
	}
	h.do("call 1")
	first := waitHit(t, e)
	if first.Key>>63 != 1 || first.Key == first.Return {
		t.Fatalf("first hit's key %#x: want a stack key, with the top bit set", first.Key)
	}
	if err := e.KeyByReturn(context.Background(), h.pid(), 1, 0, first.Return); err != nil {
		t.Fatal(err)
	}
	// From main.main and from goroutines: other stacks, the same return
	// address in main.caller.
	h.do("call 100")
	h.do("par 50 3")
	h.do("call2 7")
	second := waitHit(t, e)
	if second.Return == first.Return {
		t.Errorf("a stack with the return address counted by itself was reported: %+v", second)
	}
	noHit(t, e, 100*time.Millisecond)
	counts, err := e.CallsiteCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]uint64{}
	for _, c := range counts {
		got[c.Key] = c.Hits
	}
	want := map[uint64]uint64{first.Key: 1, first.Return: 100 + 50*3, second.Key: 7}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("callsite counts by key %v, want %v", got, want)
	}
	if err := e.KeyByReturn(context.Background(), h.pid(), 2, 0, first.Return); !errors.Is(err, ErrNotArmed) {
		t.Errorf("KeyByReturn of a group not armed: %v, want ErrNotArmed", err)
	}
}
