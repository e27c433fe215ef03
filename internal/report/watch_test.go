package report

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRecorderWatch follows one symbol's watch: two processes arm it and
// remove it one after the other (one period), arming that fails at once
// leaves no period, and a later arming opens a second one that is still
// open in a snapshot.
func TestRecorderWatch(t *testing.T) {
	r, tgt := linkedRef()
	rec := NewRecorder(r)
	at := func(min int) time.Time { return *ts(min) }
	steps := []struct {
		on   bool
		at   int
		want string // the symbol's periods after the step
	}{
		{true, 1, "[1-]"},
		{true, 2, "[1-]"}, // a second process
		{false, 3, "[1-]"},
		{false, 4, "[1-4]"},
		{false, 5, "[1-4]"}, // nothing armed: ignored
		{true, 6, "[1-4 6-]"},
		{false, 6, "[1-4]"}, // arming failed at once
		{true, 7, "[1-4 7-]"},
	}
	for i, st := range steps {
		var err error
		if st.on {
			err = rec.Watching(tgt, at(st.at))
		} else {
			err = rec.StopWatching(tgt, at(st.at))
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := periods(tgt.Symbol.Watched); got != st.want {
			t.Fatalf("step %d: periods %s, want %s", i, got, st.want)
		}
	}
	snap := rec.Snapshot()
	if got := periods(snap.Binaries[1].Findings[0].Symbols[0].Watched); got != "[1-4 7-]" {
		t.Errorf("snapshot periods %s", got)
	}
	rec.StopWatching(tgt, at(8))
	if got := periods(snap.Binaries[1].Findings[0].Symbols[0].Watched); got != "[1-4 7-]" {
		t.Errorf("the snapshot changed with the report: %s", got)
	}
	if tgt.Symbol.Status != Linked {
		t.Errorf("watching alone changed the status to %s", tgt.Symbol.Status)
	}
	if err := rec.Watching(SymbolRef{tgt.Binary, tgt.Finding, &Symbol{}}, at(9)); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("Watching a foreign symbol: %v", err)
	}
}

func periods(ps []Period) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprint(p.From.Minute()) + "-"
		if p.Until != nil {
			s += fmt.Sprint(p.Until.Minute())
		}
	}
	return s + "]"
}

// TestRecorderWatchCap: a symbol armed and removed again and again keeps
// maxPeriods periods, the last one spanning the rest.
func TestRecorderWatchCap(t *testing.T) {
	r, tgt := linkedRef()
	rec := NewRecorder(r)
	for i := range maxPeriods + 5 {
		rec.Watching(tgt, *ts(2 * i))
		rec.StopWatching(tgt, *ts(2*i + 1))
	}
	w := tgt.Symbol.Watched
	if len(w) != maxPeriods || w[len(w)-1].From.Minute() != 2*(maxPeriods-1) || w[len(w)-1].Until.Minute() != 2*(maxPeriods+4)+1 {
		t.Errorf("periods %s", periods(w))
	}
}

// TestRecorderNotWatched: a symbol not watched becomes not_watched, and so
// does its linked finding; a hit still makes both reached; reasons are
// kept once each, up to a cap; a reached symbol stays reached.
func TestRecorderNotWatched(t *testing.T) {
	r, tgt := linkedRef()
	rec := NewRecorder(r)
	for range 2 {
		if err := rec.NotWatched(tgt, "not selected"); err != nil {
			t.Fatal(err)
		}
	}
	if tgt.Symbol.Status != NotWatched || tgt.Finding.Status != NotWatched {
		t.Errorf("symbol %s, finding %s, want not_watched", tgt.Symbol.Status, tgt.Finding.Status)
	}
	if len(tgt.Symbol.Unwatched) != 1 {
		t.Errorf("reasons %q, want one", tgt.Symbol.Unwatched)
	}
	for i := range 2 * maxUnwatched {
		rec.NotWatched(tgt, fmt.Sprint("reason ", i))
	}
	if n := len(tgt.Symbol.Unwatched); n != maxUnwatched+1 || tgt.Symbol.Unwatched[n-1] != moreUnwatched {
		t.Errorf("%d reasons, last %q; want %d and %q", n, tgt.Symbol.Unwatched[n-1], maxUnwatched+1, moreUnwatched)
	}
	if err := rec.Record(tgt, Hit{Time: *ts(3)}); err != nil {
		t.Fatal(err)
	}
	if tgt.Symbol.Status != Reached || tgt.Finding.Status != Reached {
		t.Errorf("after a hit: symbol %s, finding %s, want reached", tgt.Symbol.Status, tgt.Finding.Status)
	}
	rec.NotWatched(tgt, "later")
	if tgt.Symbol.Status != Reached || tgt.Finding.Status != Reached {
		t.Errorf("not watched after a hit: symbol %s, finding %s, want reached", tgt.Symbol.Status, tgt.Finding.Status)
	}
}

// TestRecorderSelect: selections are appended, or replace the last one.
func TestRecorderSelect(t *testing.T) {
	r := &Report{}
	rec := NewRecorder(r)
	rec.Select(Selection{From: *ts(0), Selectors: []Selector{{Selector: "*"}}}, false)
	rec.Select(Selection{From: *ts(1), File: "t", Selectors: []Selector{{Selector: "GO-2021-0113", Line: 2}}}, true)
	rec.Select(Selection{From: *ts(2), File: "t"}, false)
	if len(r.Targets) != 2 || r.Targets[0].File != "t" || r.Targets[0].Selectors[0].Line != 2 || r.Targets[1].Selectors == nil || len(r.Targets[1].Selectors) != 0 {
		t.Errorf("targets %+v", r.Targets)
	}
}

// TestNotWatchedSummary groups the symbols with the same watch and reasons.
func TestNotWatchedSummary(t *testing.T) {
	syms := []*Symbol{
		{Package: "p", Name: "A", Status: NotWatched, Unwatched: []string{"r1"}},
		{Package: "p", Name: "B", Status: Linked},
		{Package: "p", Name: "C", Status: NotWatched, Watched: []Period{{From: *ts(1), Until: ts(2)}}, Unwatched: []string{"r1"}},
		{Package: "p", Name: "D", Status: NotWatched, Unwatched: []string{"r1"}},
		{Package: "p", Name: "E", Status: NotWatched, Watched: []Period{{From: *ts(3)}}, Unwatched: []string{"r1", "r2"}},
	}
	want := "p.A, p.D (never watched: r1); p.C (watched 2025-03-14 09:01:00 UTC to 2025-03-14 09:02:00 UTC; not watched: r1); " +
		"p.E (watched since 2025-03-14 09:03:00 UTC; not watched: r1; r2)"
	if got := notWatchedSummary(syms); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
