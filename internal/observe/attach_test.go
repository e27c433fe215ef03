package observe

import (
	"context"
	"testing"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestAttach attaches to a running process: its call before the attach is
// not reported, its call after is, with the callsite of that call.
func TestAttach(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	for _, v := range []testprog.Variant{testprog.Plain, testprog.StrippedPIE} {
		t.Run(v.Name, func(t *testing.T) {
			path := buildApp(t, v)
			s := newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "attach"}})
			a := startApp(t, path, "wait")
			a.expect("ready")
			if err := s.Add(context.Background(), a.cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			a.in.Write([]byte("go\n"))
			a.expect("done")
			a.wait()
			r := closeAndReport(t, s)
			sym := symbol(t, r, path, "GO-2099-0002", "Attach")
			if sym.Status != report.Reached {
				t.Fatalf("Attach: status %s, want reached", sym.Status)
			}
			if len(sym.Callsites) != 1 {
				t.Fatalf("Attach: callsites %+v, want only the call after the attach", sym.Callsites)
			}
			want := report.Callsite{Function: "main.wait", File: file, Line: lines["after"], Hits: 1}
			if got := *sym.Callsites[0]; got != want {
				t.Errorf("Attach: callsite %+v, want %+v", got, want)
			}
			if sym.Hits != 1 {
				t.Errorf("Attach: %d hits, want 1 (the call before the attach is not seen)", sym.Hits)
			}
			if st := symbol(t, r, path, "GO-2099-0001", "InitCall").Status; st != report.Linked {
				t.Errorf("InitCall ran before the attach: status %s, want linked", st)
			}
			if b := binaryOf(t, r, path); len(b.PIDs) != 1 || b.PIDs[0] != a.cmd.Process.Pid {
				t.Errorf("binary PIDs %v, want [%d]", b.PIDs, a.cmd.Process.Pid)
			}
		})
	}
}
