package observe

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestModes calls Direct in a loop: count mode reports the exact number of
// calls; one-shot mode removes the probe after the first hit, so it counts
// far fewer than the calls (those made while the removal was under way).
func TestModes(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	path := buildApp(t, testprog.Plain)
	for _, tt := range []struct {
		mode  probe.Mode
		calls uint64
	}{{probe.Count, 1000}, {probe.OneShot, 2000000}} {
		mode, calls := tt.mode, tt.calls
		t.Run(mode.String(), func(t *testing.T) {
			s := newSession(t, fixtureDB(t), Options{Mode: mode})
			r := runApp(t, s, path, "loop", strconv.FormatUint(calls, 10))
			sym := symbol(t, r, path, "GO-2099-0001", "Direct")
			if len(sym.Callsites) != 1 || sym.Callsites[0].Function != "main.loop" || sym.Callsites[0].File != file || sym.Callsites[0].Line != lines["loop"] {
				t.Fatalf("callsites %+v, want main.loop at line %d", sym.Callsites, lines["loop"])
			}
			switch mode {
			case probe.Count:
				if sym.Hits != calls {
					t.Errorf("count mode: %d hits, want exactly %d", sym.Hits, calls)
				}
			case probe.OneShot:
				if sym.Hits < 1 || sym.Hits >= calls/2 {
					t.Errorf("one-shot mode: %d hits of %d calls, want far fewer (the probe is removed after the first)", sym.Hits, calls)
				}
				t.Logf("one-shot: %d of %d calls counted before the probe was removed", sym.Hits, calls)
			}
			// One-shot hits are not every call: the report must say so.
			if got := slices.Contains(r.Notes, OneShotNote); got != (mode == probe.OneShot) {
				t.Errorf("%s mode: notes %q; want the one-shot note: %v", mode, r.Notes, !got)
			}
			if st := symbol(t, r, path, "GO-2099-0001", "InitCall"); st.Hits != 1 {
				t.Errorf("InitCall: %d hits, want 1", st.Hits)
			}
		})
	}
}

// TestAddErrors: processes that cannot be observed give clear errors, and
// the session goes on.
func TestAddErrors(t *testing.T) {
	testprog.RequireRoot(t)
	s := newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "attach"}})
	ctx := context.Background()

	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	if err := s.Add(ctx, sleep.Process.Pid); !errors.Is(err, binfo.ErrNotGoBinary) {
		t.Errorf("Add(sleep): %v, want ErrNotGoBinary", err)
	}

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, gone.Process.Pid); !errors.Is(err, ErrExited) {
		t.Errorf("Add(exited process): %v, want ErrExited", err)
	}
	if err := s.Add(ctx, 0); err == nil {
		t.Error("Add(0) succeeded")
	}

	// The session still works.
	a := startApp(t, buildApp(t, testprog.Plain), "wait")
	a.expect("ready")
	if err := s.Add(ctx, a.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, a.cmd.Process.Pid); err != nil {
		t.Fatalf("adding a process twice: %v", err)
	}
	a.in.Write([]byte("go\n"))
	a.expect("done")
	a.wait()
	s.Close()
	r, err := s.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := symbol(t, r, a.cmd.Path, "GO-2099-0002", "Attach"); st.Status != report.Reached || st.Hits != 1 {
		t.Errorf("Attach: %s with %d hits, want reached once", st.Status, st.Hits)
	}
}

// TestCountCallsites: in count mode each callsite reports the exact number
// of calls made from it, and calls from one line add up even when they
// have different return addresses; inline sites too.
func TestCountCallsites(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	const n1, n2 = 3000, 1234
	for _, v := range []testprog.Variant{testprog.Plain, testprog.PIE} {
		t.Run(v.Name, func(t *testing.T) {
			path := buildApp(t, v)
			s := newSession(t, fixtureDB(t), Options{Mode: probe.Count})
			r := runApp(t, s, path, "loop2", strconv.Itoa(n1), strconv.Itoa(n2))
			for _, tt := range []struct {
				symbol string
				want   map[string]uint64 // by marker
			}{
				{"Direct", map[string]uint64{"loopA": n1, "loopB": n2, "loopC": 2 * n1}},
				{"Small", map[string]uint64{"smallA": n1, "smallB": n2}},
			} {
				sym := symbol(t, r, path, "GO-2099-0001", tt.symbol)
				var want []report.Callsite
				var total uint64
				for marker, n := range tt.want {
					want = append(want, report.Callsite{Function: "main.loop2", File: file, Line: lines[marker], Hits: n})
					total += n
				}
				slices.SortFunc(want, func(a, b report.Callsite) int { return a.Line - b.Line })
				var got []report.Callsite
				for _, c := range sym.Callsites {
					got = append(got, *c)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: callsites %+v, want %+v", tt.symbol, got, want)
				}
				if sym.Hits != total {
					t.Errorf("%s: %d hits, want %d", tt.symbol, sym.Hits, total)
				}
			}
		})
	}
}

// TestCountInlineSite: an inlined copy in a loop (main.loop3's Impl.Do)
// counts every call exactly at its entry, and its hits read as the
// inlined function at its own line, called from the caller at the call's
// line.
func TestCountInlineSite(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	const n = 2500
	for _, v := range []testprog.Variant{testprog.Plain, testprog.PIE} {
		t.Run(v.Name, func(t *testing.T) {
			path := buildApp(t, v)
			s := newSession(t, fixtureDB(t), Options{Mode: probe.Count})
			r := runApp(t, s, path, "loop3", strconv.Itoa(n))
			sym := symbol(t, r, path, "GO-2099-0001", "Impl.Do")
			want := report.Callsite{Function: "main.loop3", File: file, Line: lines["doLoop"], Hits: n}
			if len(sym.Callsites) != 1 || *sym.Callsites[0] != want {
				t.Errorf("callsites %+v, want [%+v]", sym.Callsites, want)
			}
			if sym.Hits != n {
				t.Errorf("%d hits, want %d", sym.Hits, n)
			}
			caller := report.Frame{Function: "main.loop3", File: file, Line: lines["doLoop"]}
			if len(sym.Stack) < 2 || sym.Stack[0].Function != "example.com/vuln.(*Impl).Do" || filepath.Base(sym.Stack[0].File) != "vuln.go" || sym.Stack[1] != caller {
				t.Errorf("stack %+v, want it to start with example.com/vuln.(*Impl).Do in vuln.go, then %+v", sym.Stack, caller)
			}
		})
	}
}

// TestCountClosures: Closures runs a function literal three times, a
// deferred call and a goroutine on each call; with the local toolchain
// (which names them func1, func2 and deferwrap1) and inlining either way,
// count mode counts its calls, not its closures, all from the one
// callsite; one-shot mode never counts more than the calls. The closures'
// sites are watched (Uncounted), so they still show the symbol ran.
func TestCountClosures(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	const calls = 40
	want := report.Callsite{Function: "main.closures", File: file, Line: lines["closures"], Hits: calls}
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Inlined, testprog.StrippedPIE} {
		for _, mode := range []probe.Mode{probe.Count, probe.OneShot} {
			t.Run(v.Name+"/"+mode.String(), func(t *testing.T) {
				path := buildApp(t, v)
				s := newSession(t, fixtureDB(t), Options{Mode: mode})
				r := runApp(t, s, path, "closures", strconv.Itoa(calls))
				sym := symbol(t, r, path, "GO-2099-0001", "Closures")
				if sym.Status != report.Reached || sym.HitsLowerBound {
					t.Fatalf("Closures: %s, lower bound %v; want reached, exact", sym.Status, sym.HitsLowerBound)
				}
				switch mode {
				case probe.Count:
					if sym.Hits != calls || len(sym.Callsites) != 1 || *sym.Callsites[0] != want {
						t.Errorf("Closures: %d hits from %v, want %d from %+v", sym.Hits, deref(sym.Callsites), calls, want)
					}
				case probe.OneShot:
					if sym.Hits > calls {
						t.Errorf("one-shot: %d hits of %d calls", sym.Hits, calls)
					}
				}
				uncounted := 0
				s.mu.Lock()
				for _, g := range s.groups {
					if g.name == "Closures" {
						for _, site := range g.sites {
							if site.Uncounted {
								uncounted++
							}
						}
					}
				}
				s.mu.Unlock()
				if uncounted < 2 {
					t.Errorf("%d uncounted sites of Closures, want its closures' (the goroutine's and the deferred call's at least)", uncounted)
				}
			})
		}
	}
}
