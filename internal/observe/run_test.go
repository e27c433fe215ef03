package observe

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// runApp runs the app under a new session and returns the final report.
func runApp(t *testing.T, s *Session, path string, args ...string) *report.Report {
	t.Helper()
	return runCmd(t, s, exec.Command(path, args...))
}

// runCmd runs cmd under s, closes s and returns the final report.
func runCmd(t *testing.T, s *Session, cmd *exec.Cmd) *report.Report {
	t.Helper()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	code, err := s.Run(context.Background(), cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("%v exited with %d", cmd.Args, code)
	}
	return closeAndReport(t, s)
}

// TestRunCallsites runs the app in every build variant and checks each way
// of calling a vulnerable function: status and callsite.
func TestRunCallsites(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	cases := []struct {
		symbol, function, marker string
	}{
		{"Direct", "main.direct", "direct"},
		{"Small", "main.viaInline", "inline"},
		{"Map", "main.generic", "map"},
		{"List.Push", "main.generic", "push"},
		{"T.Method", "main.methodValue", "method"},
		{"Impl.Do", "main.viaIface", "iface"},
		{"Deferred", "main.viaDefer.func1", "defer"},
		{"InitCall", "main.init.0", "init"},
		{"InGoroutine", "main.viaGoroutine.func1", "goroutine"},
	}
	variants := []testprog.Variant{testprog.Plain, testprog.Stripped, testprog.PIE, testprog.Inlined}
	for _, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			path := buildApp(t, v)
			s := newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "run"}})
			r := runApp(t, s, path, "all")
			for _, c := range cases {
				t.Run(c.symbol, func(t *testing.T) {
					sym := symbol(t, r, path, "GO-2099-0001", c.symbol)
					if sym.Status != report.Reached {
						t.Fatalf("status %s, want reached", sym.Status)
					}
					if len(sym.Callsites) != 1 {
						t.Fatalf("callsites %+v, want one", sym.Callsites)
					}
					got := *sym.Callsites[0]
					want := report.Callsite{Function: c.function, File: file, Line: lines[c.marker], Hits: 1}
					if got != want {
						t.Errorf("callsite %+v, want %+v", got, want)
					}
					if sym.Hits < 1 || sym.FirstSeen == nil || len(sym.Stack) < 2 {
						t.Errorf("hits %d, first seen %v, stack %v: want a hit with its time and stack", sym.Hits, sym.FirstSeen, sym.Stack)
					}
				})
			}
			for _, name := range []string{"Never"} {
				if st := symbol(t, r, path, "GO-2099-0001", name).Status; st != report.Linked {
					t.Errorf("%s: status %s, want linked", name, st)
				}
			}
			if st := symbol(t, r, path, "GO-2099-0002", "Attach").Status; st != report.Linked {
				t.Errorf("Attach: status %s, want linked", st)
			}
			// Small is only ever inlined: every probe site is an inlined copy.
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, g := range s.groups {
				if g.name != "Small" {
					continue
				}
				for _, site := range g.sites {
					if site.Kind != probe.SiteInline {
						t.Errorf("Small has a %s site at %#x: want inlined copies only", site.Kind, site.PC)
					}
				}
			}
		})
	}
}

// TestRunChildren runs the app, which starts three copies of itself at
// once: each child is armed before it runs and seen calling Child.
func TestRunChildren(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	path := buildApp(t, testprog.Plain)
	s := newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "run"}})
	r := runApp(t, s, path, "children", "3")
	sym := symbol(t, r, path, "GO-2099-0001", "Child")
	if sym.Status != report.Reached || sym.Hits != 3 {
		t.Fatalf("Child: status %s with %d hits, want reached with 3", sym.Status, sym.Hits)
	}
	want := report.Callsite{Function: "main.main", File: file, Line: lines["child"], Hits: 3}
	if len(sym.Callsites) != 1 || *sym.Callsites[0] != want {
		t.Errorf("Child: callsites %+v, want [%+v]", sym.Callsites, want)
	}
	if pids := binaryOf(t, r, path).PIDs; len(pids) != 4 {
		t.Errorf("binary PIDs %v, want the parent and 3 children", pids)
	}
	// Every process ran InitCall before main: each was armed in time.
	if n := symbol(t, r, path, "GO-2099-0001", "InitCall").Hits; n != 4 {
		t.Errorf("InitCall: %d hits, want 4 (one per process)", n)
	}
}

// TestRunProcess checks what Run passes through: standard streams, exit
// codes, forwarded signals; and that it observes non-Go programs quietly.
func TestRunProcess(t *testing.T) {
	testprog.RequireRoot(t)
	path := buildApp(t, testprog.Plain)
	t.Run("stdio", func(t *testing.T) {
		s := newSession(t, fixtureDB(t), Options{})
		var out, errOut bytes.Buffer
		cmd := exec.Command(path, "echo")
		cmd.Stdin = strings.NewReader("a\nb\n")
		cmd.Stdout, cmd.Stderr = &out, &errOut
		code, err := s.Run(context.Background(), cmd, nil)
		if err != nil || code != 0 {
			t.Fatalf("Run: %d, %v", code, err)
		}
		if out.String() != "echo: a\necho: b\n" || errOut.String() != "stderr:done\n" {
			t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
		}
	})
	t.Run("exit code", func(t *testing.T) {
		s := newSession(t, fixtureDB(t), Options{})
		code, err := s.Run(context.Background(), exec.Command(path, "exit", "7"), nil)
		if err != nil || code != 7 {
			t.Fatalf("Run: %d, %v; want 7", code, err)
		}
	})
	t.Run("signal", func(t *testing.T) {
		s := newSession(t, fixtureDB(t), Options{})
		sigs := make(chan os.Signal, 1)
		go func() {
			time.Sleep(300 * time.Millisecond)
			sigs <- syscall.SIGTERM
		}()
		code, err := s.Run(context.Background(), exec.Command(path, "sleep"), sigs)
		if err != nil || code != 128+int(syscall.SIGTERM) {
			t.Fatalf("Run: %d, %v; want %d", code, err, 128+int(syscall.SIGTERM))
		}
	})
	t.Run("not go", func(t *testing.T) {
		s := newSession(t, fixtureDB(t), Options{})
		var out bytes.Buffer
		cmd := exec.Command("/bin/sh", "-c", "echo hi")
		cmd.Stdout = &out
		code, err := s.Run(context.Background(), cmd, nil)
		if err != nil || code != 0 || out.String() != "hi\n" {
			t.Fatalf("Run: %d, %v, output %q", code, err, out.String())
		}
	})
	t.Run("missing", func(t *testing.T) {
		s := newSession(t, fixtureDB(t), Options{})
		if _, err := s.Run(context.Background(), exec.Command("/nonexistent/prog"), nil); err == nil {
			t.Fatal("Run of a missing program succeeded")
		}
	})
}

// TestRunCancel: a cancelled context ends the program with SIGTERM.
func TestRunCancel(t *testing.T) {
	testprog.RequireRoot(t)
	s := newSession(t, fixtureDB(t), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, err := s.Run(ctx, exec.Command(buildApp(t, testprog.Plain), "sleep"), nil)
	if err != nil || code != 128+int(syscall.SIGTERM) {
		t.Fatalf("Run: %d, %v; want %d", code, err, 128+int(syscall.SIGTERM))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v after cancel", d)
	}
}
