package report

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// linkedRef returns a report whose only finding is linked, and the
// target of its first symbol.
func linkedRef() (*Report, SymbolRef) {
	r := fixtureReport()
	b := r.Binaries[1]
	f := b.Findings[0] // GO-2021-0113 in worker: linked
	return r, SymbolRef{Binary: b, Finding: f, Symbol: f.Symbols[0]}
}

func TestRecord(t *testing.T) {
	r, tgt := linkedRef()
	rec := NewRecorder(r)
	at := func(min int) time.Time { return *ts(min) }
	cs := func(fn string, line int) *Frame { return &Frame{Function: fn, File: "/app/main.go", Line: line} }
	stack1 := []Frame{{Function: "x.Parse"}, {Function: "main.a"}}
	stack0 := []Frame{{Function: "x.Parse"}, {Function: "main.b"}}
	hits := []Hit{
		{Time: at(10), PID: 9, Callsite: cs("main.a", 5), Stack: stack1},
		{Time: at(20), PID: 3, Callsite: cs("main.a", 5)},
		{Time: at(15), PID: 9, Callsite: cs("main.a", 7), Count: 5},
		// Earlier than the first one recorded: its stack wins.
		{Time: at(2), PID: 9, Callsite: cs("main.b", 3), Stack: stack0},
		{Time: at(12)}, // no callsite, no pid
	}
	for i, h := range hits {
		if err := rec.Record(tgt, h); err != nil {
			t.Fatalf("hit %d: %v", i, err)
		}
	}
	s := tgt.Symbol
	if s.Status != Reached || tgt.Finding.Status != Reached {
		t.Errorf("status symbol %s finding %s, want reached", s.Status, tgt.Finding.Status)
	}
	if s.Hits != 9 {
		t.Errorf("hits = %d, want 9", s.Hits)
	}
	if !s.FirstSeen.Equal(at(2)) || !s.LastSeen.Equal(at(20)) {
		t.Errorf("seen %v .. %v, want %v .. %v", s.FirstSeen, s.LastSeen, at(2), at(20))
	}
	want := []Callsite{
		{Function: "main.b", File: "/app/main.go", Line: 3, Hits: 1},
		{Function: "main.a", File: "/app/main.go", Line: 5, Hits: 2},
		{Function: "main.a", File: "/app/main.go", Line: 7, Hits: 5},
	}
	if len(s.Callsites) != len(want) {
		t.Fatalf("callsites = %d, want %d", len(s.Callsites), len(want))
	}
	for i := range want {
		if *s.Callsites[i] != want[i] {
			t.Errorf("callsite %d = %+v, want %+v", i, *s.Callsites[i], want[i])
		}
	}
	if len(s.Stack) != 2 || s.Stack[1].Function != "main.b" {
		t.Errorf("stack = %+v, want the earliest hit's", s.Stack)
	}
	if got := tgt.Binary.PIDs; len(got) != 2 || got[0] != 3 || got[1] != 9 {
		t.Errorf("pids = %v, want [3 9]", got)
	}
	// Recording must not alias the caller's stack.
	stack0[1].Function = "changed"
	if s.Stack[1].Function != "main.b" {
		t.Error("recorded stack aliases the hit's")
	}
}

// TestRecordUncountedLowerBound: a hit that is not a call (Uncounted)
// makes the symbol reached and keeps its stack, but adds no hits and no
// callsite; a LowerBound hit marks the symbol's hits as a lower bound,
// which every format then says.
func TestRecordUncountedLowerBound(t *testing.T) {
	stack := []Frame{{Function: "x.Parse.func1"}, {Function: "runtime.goexit"}}
	tests := []struct {
		name      string
		hits      []Hit
		wantHits  uint64
		wantSites int
		wantLower bool
		text      string // in the text report
		vex       string // in the OpenVEX statement
	}{
		{"uncounted only", []Hit{{Time: *ts(1), Uncounted: true, Stack: stack, Callsite: &Frame{Function: "runtime.goexit"}}},
			0, 0, false, "without a counted call", "ran without a counted call"},
		{"uncounted and counted", []Hit{
			{Time: *ts(1), Uncounted: true, Stack: stack, Callsite: &Frame{Function: "runtime.goexit"}},
			{Time: *ts(2), Count: 3, Callsite: &Frame{Function: "main.a", Line: 4}},
		}, 3, 1, false, "3 hits", "ran 3 times"},
		{"uncounted, lower bound", []Hit{{Time: *ts(1), Uncounted: true, LowerBound: true, Stack: stack}},
			0, 0, true, "without a counted call (its code ran only where calls are not counted: a closure inside it, or an inlined copy", "ran without a counted call"},
		{"lower bound of one", []Hit{{Time: *ts(1), LowerBound: true, Stack: stack, Callsite: &Frame{Function: "main.a", Line: 4}}},
			1, 1, true, "at least 1 hit\n", "ran at least once"},
		{"lower bound", []Hit{{Time: *ts(1), Count: 2, LowerBound: true, Stack: stack, Callsite: &Frame{Function: "main.a", Line: 4}}},
			2, 1, true, "at least 2 hits", "ran at least 2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, tgt := linkedRef()
			rec := NewRecorder(r)
			for _, h := range tt.hits {
				if err := rec.Record(tgt, h); err != nil {
					t.Fatal(err)
				}
			}
			s := tgt.Symbol
			if s.Status != Reached || s.Hits != tt.wantHits || len(s.Callsites) != tt.wantSites || s.HitsLowerBound != tt.wantLower {
				t.Errorf("symbol %s, %d hits, %d callsites, lower bound %v; want reached, %d, %d, %v",
					s.Status, s.Hits, len(s.Callsites), s.HitsLowerBound, tt.wantHits, tt.wantSites, tt.wantLower)
			}
			if len(s.Stack) == 0 {
				t.Error("the stack of the first hit was not kept")
			}
			if got := string(render(t, "text", r)); !strings.Contains(got, tt.text) {
				t.Errorf("text report lacks %q:\n%s", tt.text, got)
			}
			if got := string(render(t, "openvex", r)); !strings.Contains(got, tt.vex) {
				t.Errorf("OpenVEX lacks %q:\n%s", tt.vex, got)
			}
			if got := string(render(t, "sarif", r)); strings.Contains(got, `"hitsLowerBound": true`) != (tt.wantLower && tt.wantHits > 0) {
				t.Errorf("SARIF has the hitsLowerBound property: %v, want %v", !(tt.wantLower && tt.wantHits > 0), tt.wantLower && tt.wantHits > 0)
			}
			if got := string(render(t, "json", r)); strings.Contains(got, `"hits_lower_bound"`) != tt.wantLower {
				t.Errorf("JSON has hits_lower_bound: %v, want %v", !tt.wantLower, tt.wantLower)
			}
		})
	}
}

func TestRecordKeepsOtherSymbolsLinked(t *testing.T) {
	r := fixtureReport()
	b := r.Binaries[0]
	f := b.Findings[3] // GO-2023-1571: linked, one symbol
	other := b.Findings[2].Symbols[1]
	if err := NewRecorder(r).Record(SymbolRef{b, f, f.Symbols[0]}, Hit{Time: *ts(1)}); err != nil {
		t.Fatal(err)
	}
	if f.Status != Reached || other.Status != Linked || r.Binaries[1].Findings[0].Status != Linked {
		t.Errorf("statuses: hit finding %s, other symbol %s, other binary %s", f.Status, other.Status, r.Binaries[1].Findings[0].Status)
	}
}

func TestRecordUnknownSymbol(t *testing.T) {
	r, tgt := linkedRef()
	rec := NewRecorder(r)
	other := fixtureReport()
	tests := []struct {
		name string
		t    SymbolRef
	}{
		{"nil symbol", SymbolRef{Binary: tgt.Binary, Finding: tgt.Finding}},
		{"nil binary", SymbolRef{Finding: tgt.Finding, Symbol: tgt.Symbol}},
		{"symbol of another finding", SymbolRef{tgt.Binary, tgt.Finding, r.Binaries[0].Findings[1].Symbols[0]}},
		{"finding of another binary", SymbolRef{r.Binaries[0], tgt.Finding, tgt.Symbol}},
		{"finding of another report", SymbolRef{other.Binaries[1], tgt.Finding, tgt.Symbol}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rec.Record(tt.t, Hit{}); !errors.Is(err, ErrUnknownSymbol) {
				t.Errorf("err = %v, want ErrUnknownSymbol", err)
			}
		})
	}
	if tgt.Symbol.Hits != 0 || tgt.Finding.Status != Linked {
		t.Errorf("a rejected hit changed the report: %+v", tgt.Symbol)
	}
}

// TestRecordConcurrent records from many goroutines while others take
// snapshots; run it with -race.
func TestRecordConcurrent(t *testing.T) {
	r := fixtureReport()
	b := r.Binaries[0]
	f := b.Findings[2]
	targets := []SymbolRef{{b, f, f.Symbols[0]}, {b, f, f.Symbols[1]}}
	rec := NewRecorder(r)
	const workers, perWorker = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				h := Hit{
					Time:     ts(0).Add(time.Duration(w*perWorker+i) * time.Millisecond),
					PID:      100 + w%3,
					Callsite: &Frame{Function: "main.f", File: "main.go", Line: 10 + (i/2)%4},
				}
				if err := rec.Record(targets[i%2], h); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 50 {
				s := rec.Snapshot()
				if s.Binaries[0].Findings[2].Symbols[0].Hits > workers*perWorker {
					t.Error("impossible hit count in snapshot")
				}
				rec.Note("busy")
			}
		})
	}
	wg.Wait()
	snap := rec.Snapshot()
	sf := snap.Binaries[0].Findings[2]
	var total uint64
	for _, s := range sf.Symbols {
		total += s.Hits
		var sum uint64
		for _, c := range s.Callsites {
			sum += c.Hits
		}
		if sum != s.Hits-boolU64(s.Name == "ServeConn") {
			// ServeConn starts with one hit without a callsite.
			t.Errorf("%s: callsite hits %d, symbol hits %d", s.Name, sum, s.Hits)
		}
		if len(s.Callsites) != 4 {
			t.Errorf("%s: %d callsites, want 4", s.Name, len(s.Callsites))
		}
	}
	if want := uint64(workers*perWorker + 1); total != want {
		t.Errorf("total hits %d, want %d", total, want)
	}
	if want := ts(0).Add((workers*perWorker - 1) * time.Millisecond); !sf.Symbols[0].LastSeen.Equal(want) && !sf.Symbols[1].LastSeen.Equal(want) {
		t.Errorf("last seen %v / %v, want %v", sf.Symbols[0].LastSeen, sf.Symbols[1].LastSeen, want)
	}
	if len(snap.Binaries[0].PIDs) != 4 { // 4242 and 100..102
		t.Errorf("pids = %v", snap.Binaries[0].PIDs)
	}
	if n := len(snap.Notes); n != 2 {
		t.Errorf("notes = %q, want the fixture's and one busy", snap.Notes)
	}
	// The snapshot is a copy.
	sf.Symbols[0].Callsites[0].Hits = 0
	if f.Symbols[0].Callsites[0].Hits == 0 {
		t.Error("snapshot shares callsites with the report")
	}
}

func boolU64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestClone(t *testing.T) {
	r := fixtureReport()
	c := r.Clone()
	*c.Binaries[0].Findings[1].Symbols[1].FirstSeen = time.Time{}
	c.Binaries[0].Findings[1].Aliases[0] = "x"
	c.Binaries[0].Modules[0].Path = "x"
	c.Binaries[0].Findings[1].Symbols[1].Stack[0].Line = 0
	c.Notes[0] = "x"
	s := r.Binaries[0].Findings[1].Symbols[1]
	if s.FirstSeen.IsZero() || r.Binaries[0].Findings[1].Aliases[0] == "x" || r.Binaries[0].Modules[0].Path == "x" || s.Stack[0].Line == 0 || r.Notes[0] == "x" {
		t.Error("clone shares memory with the original")
	}
}
