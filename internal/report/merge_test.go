package report

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// oneBinary returns a report of the fixture's binary i alone, as one run
// of it would be.
func oneBinary(i int) *Report {
	r := fixtureReport()
	r.Binaries = []*Binary{r.Binaries[i]}
	return r
}

// TestMergeDistinct merges the reports of two binaries, as go test -exec
// makes them: the result is the report of both, sorted by name, over both
// times, and src is left as it was.
func TestMergeDistinct(t *testing.T) {
	a, b := oneBinary(1), oneBinary(0)
	a.Started, a.Finished = *ts(20), *ts(40)
	a.Notes = append(a.Notes, "a note of a only")
	before := b.Clone()
	Merge(a, b)
	if !reflect.DeepEqual(b, before) {
		t.Error("Merge modified src")
	}
	want := fixtureReport()
	var got []string
	for _, bin := range a.Binaries {
		got = append(got, bin.Path)
	}
	if !slices.Equal(got, []string{want.Binaries[0].Path, want.Binaries[1].Path}) {
		t.Errorf("binaries %q, want both, by name", got)
	}
	if !reflect.DeepEqual(a.Binaries[0], want.Binaries[0]) || !reflect.DeepEqual(a.Binaries[1], want.Binaries[1]) {
		t.Error("a binary changed in the merge")
	}
	if !a.Started.Equal(*ts(0)) || !a.Finished.Equal(*ts(40)) {
		t.Errorf("span %v to %v, want both reports' (%v to %v)", a.Started, a.Finished, *ts(0), *ts(40))
	}
	if !slices.Equal(a.Notes, []string{want.Notes[0], "a note of a only"}) {
		t.Errorf("notes %q, want each once", a.Notes)
	}
	if !reflect.DeepEqual(a.Targets, want.Targets) {
		t.Errorf("targets %+v, want each selection once", a.Targets)
	}
	b.Binaries[0].Findings[1].Symbols[1].Hits = 99
	if a.Binaries[0].Findings[1].Symbols[1].Hits == 99 {
		t.Error("dst shares a symbol with src")
	}
}

// TestMergeSame merges two observations of the same binary (a test binary
// run twice): statuses take the more severe, hits and callsites add up,
// first and last seen widen, watched periods and reasons join.
func TestMergeSame(t *testing.T) {
	a, b := oneBinary(0), oneBinary(0)
	// In a, Parse ran once, earlier, from another callsite; MatchStrings
	// ran in b only.
	pa := a.Binaries[0].Findings[1].Symbols[1]
	pa.Hits, pa.FirstSeen, pa.LastSeen = 1, ts(1), ts(1)
	pa.Callsites = []*Callsite{{Function: "main.other", File: "/home/dev/app/other.go", Line: 7, Hits: 1}}
	pa.Stack = []Frame{{Function: "main.other", File: "/home/dev/app/other.go", Line: 7}}
	b.Binaries[0].Findings[1].Symbols[0].Status = Reached
	b.Binaries[0].Findings[1].Symbols[0].Hits = 2
	b.Binaries[0].Findings[1].Symbols[0].HitsLowerBound = true
	b.Binaries[0].PIDs = []int{5000}
	// The net/http finding: not watched in a, watched all the time in b.
	b.Binaries[0].Findings[2].Symbols[0].Unwatched = nil
	b.Binaries[0].Findings[2].Symbols[0].Watched = []Period{{From: *ts(20), Until: ts(30)}}
	Merge(a, b)
	if len(a.Binaries) != 1 {
		t.Fatalf("%d binaries, want the one observed twice", len(a.Binaries))
	}
	bin := a.Binaries[0]
	if !slices.Equal(bin.PIDs, []int{4242, 5000}) {
		t.Errorf("pids %v, want both runs'", bin.PIDs)
	}
	f := bin.Findings[1]
	ms, parse := f.Symbols[0], f.Symbols[1]
	if ms.Status != Reached || ms.Hits != 2 || !ms.HitsLowerBound {
		t.Errorf("MatchStrings %s with %d hits (lower bound %v), want reached with b's 2, a lower bound", ms.Status, ms.Hits, ms.HitsLowerBound)
	}
	if parse.Hits != 13 || !parse.FirstSeen.Equal(*ts(1)) || !parse.LastSeen.Equal(*ts(17)) {
		t.Errorf("Parse: %d hits from %v to %v, want 13 from %v to %v", parse.Hits, parse.FirstSeen, parse.LastSeen, *ts(1), *ts(17))
	}
	if len(parse.Callsites) != 3 || parse.Stack[0].Function != "main.other" {
		t.Errorf("Parse: callsites %d (want 3), stack from %s (want a's, the earliest)", len(parse.Callsites), parse.Stack[0].Function)
	}
	var sum uint64
	for _, c := range parse.Callsites {
		sum += c.Hits
	}
	if sum != parse.Hits {
		t.Errorf("callsite hits add up to %d, want %d", sum, parse.Hits)
	}
	serve := bin.Findings[2].Symbols[0]
	if len(serve.Watched) != 2 || len(serve.Unwatched) != 1 || serve.Status != Reached {
		t.Errorf("ServeConn: watched %v, unwatched %q, status %s; want both periods, a's reason, reached", serve.Watched, serve.Unwatched, serve.Status)
	}
	if f.Status != Reached {
		t.Errorf("finding %s, want reached", f.Status)
	}
}

// TestMergeCapsPeriods checks that merging many runs of one binary keeps
// at most maxPeriods watched periods, the last spanning the rest.
func TestMergeCapsPeriods(t *testing.T) {
	dst := oneBinary(1)
	for i := range 2 * maxPeriods {
		src := oneBinary(1)
		src.Binaries[0].Findings[0].Symbols[0].Watched = []Period{{From: *ts(i), Until: ts(i)}}
		Merge(dst, src)
	}
	w := dst.Binaries[0].Findings[0].Symbols[0].Watched
	if len(w) != maxPeriods {
		t.Fatalf("%d periods, want %d", len(w), maxPeriods)
	}
	if last := w[len(w)-1]; !last.From.Equal(*ts(maxPeriods - 1)) || last.Until == nil || !last.Until.Equal(*ts(2*maxPeriods - 1)) {
		t.Errorf("last period %v to %v, want %v to %v", last.From, last.Until, *ts(maxPeriods - 1), *ts(2*maxPeriods - 1))
	}
}

// TestMergeDifferentDB notes that the merged reports used different
// databases.
func TestMergeDifferentDB(t *testing.T) {
	a, b := oneBinary(0), oneBinary(1)
	b.DB.Modified = b.DB.Modified.Add(24 * time.Hour)
	Merge(a, b)
	if len(a.Notes) != 2 {
		t.Errorf("notes %q, want one about the databases", a.Notes)
	}
	empty := &Report{}
	Merge(empty, oneBinary(0))
	if empty.Schema != Schema || empty.DB != oneBinary(0).DB || len(empty.Binaries) != 1 || len(empty.Notes) != 1 {
		t.Errorf("merged into an empty report: %+v, want src's header and binary", empty)
	}
}
