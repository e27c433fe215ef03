package report

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxUnwatched caps the reasons a symbol keeps for not being watched.
const maxUnwatched = 8

// moreUnwatched stands for the reasons beyond maxUnwatched.
const moreUnwatched = "(more reasons left out)"

// maxPeriods caps a symbol's Watched periods: beyond it, the last period
// runs on over the gaps (a program run again and again would add one
// period per run).
const maxPeriods = 16

// Watching records that t's symbol's probes were armed in one more
// process at at. The first such process opens a period of the symbol's
// Watched; past maxPeriods, it reopens the last one instead.
func (rec *Recorder) Watching(t SymbolRef, at time.Time) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.checkRef("record watching", t); err != nil {
		return err
	}
	if rec.armed == nil {
		rec.armed = map[*Symbol]int{}
	}
	s := t.Symbol
	rec.armed[s]++
	switch {
	case rec.armed[s] > 1:
	case len(s.Watched) >= maxPeriods:
		s.Watched[len(s.Watched)-1].Until = nil
	default:
		s.Watched = append(s.Watched, Period{From: at})
	}
	return nil
}

// StopWatching records that t's symbol's probes were removed from one
// process at at: the process exited, the targets left the symbol out, a
// one-shot probe fired, or arming failed. When no process has them any
// more, the symbol's current Watched period ends at at; a period that ends
// when it began (arming that failed) is dropped. Calls without a matching
// Watching are ignored.
func (rec *Recorder) StopWatching(t SymbolRef, at time.Time) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.checkRef("record end of watching", t); err != nil {
		return err
	}
	s := t.Symbol
	n := rec.armed[s]
	if n == 0 {
		return nil
	}
	if n > 1 {
		rec.armed[s] = n - 1
		return nil
	}
	delete(rec.armed, s)
	if len(s.Watched) == 0 {
		return nil
	}
	last := &s.Watched[len(s.Watched)-1]
	if !at.After(last.From) {
		s.Watched = s.Watched[:len(s.Watched)-1]
		return nil
	}
	last.Until = &at
	return nil
}

// NotWatched records that t's symbol went unwatched, in some observed
// process or for some of the time, and why (each reason is kept once, up
// to a few). The symbol becomes not_watched unless it was reached, and so
// does its finding unless its status is more severe: not seeing a symbol
// run while it was not watched says nothing about whether it ran.
func (rec *Recorder) NotWatched(t SymbolRef, reason string) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.checkRef("record not watched", t); err != nil {
		return err
	}
	s := t.Symbol
	switch {
	case slices.Contains(s.Unwatched, reason):
	case len(s.Unwatched) < maxUnwatched:
		s.Unwatched = append(s.Unwatched, reason)
	case len(s.Unwatched) == maxUnwatched:
		s.Unwatched = append(s.Unwatched, moreUnwatched)
	}
	if s.Status.Rank() < NotWatched.Rank() {
		s.Status = NotWatched
	}
	if t.Finding.Status.Rank() < NotWatched.Rank() {
		t.Finding.Status = NotWatched
	}
	return nil
}

// Select records that the targets sel.Selectors are watched from sel.From
// on. With replace, sel takes the place of the last selection recorded
// (one that was never in force while a process was observed).
func (rec *Recorder) Select(sel Selection, replace bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	sel.Selectors = slices.Clone(sel.Selectors)
	if sel.Selectors == nil {
		sel.Selectors = []Selector{}
	}
	if replace && len(rec.r.Targets) > 0 {
		rec.r.Targets[len(rec.r.Targets)-1] = sel
		return
	}
	rec.r.Targets = append(rec.r.Targets, sel)
}

// watchNote says when a symbol was watched and why not otherwise: "never
// watched: REASONS" or "watched PERIODS; not watched: REASONS".
func watchNote(s *Symbol) string {
	why := strings.Join(s.Unwatched, "; ")
	if len(s.Watched) == 0 {
		return "never watched: " + why
	}
	return "watched " + watchedText(s.Watched) + "; not watched: " + why
}

// notWatchedSummary lists the not_watched symbols of syms, those with the
// same watchNote together: "A, B (never watched: R); C (watched ...)".
func notWatchedSummary(syms []*Symbol) string {
	var notes []string
	names := map[string][]string{}
	for _, s := range syms {
		if s.Status != NotWatched {
			continue
		}
		n := watchNote(s)
		if _, ok := names[n]; !ok {
			notes = append(notes, n)
		}
		names[n] = append(names[n], symbolName(s))
	}
	parts := make([]string, len(notes))
	for i, n := range notes {
		parts[i] = strings.Join(names[n], ", ") + " (" + n + ")"
	}
	return strings.Join(parts, "; ")
}

// watchedText is "never", or the periods a symbol was watched.
func watchedText(ps []Period) string {
	if len(ps) == 0 {
		return "never"
	}
	var out []string
	for _, p := range ps {
		if p.Until == nil {
			out = append(out, "since "+stamp(p.From))
		} else {
			out = append(out, fmt.Sprintf("%s to %s", stamp(p.From), stamp(*p.Until)))
		}
	}
	return strings.Join(out, ", ")
}
