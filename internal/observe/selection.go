package observe

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
)

// What the report says of the symbols a session does not watch, and of
// targets that select nothing. A symbol that is in a binary but was not
// watched for all the time a process of the binary was observed is
// report.NotWatched, with the reason; the report lists every selection in
// force (report.Report.Targets) and notes each selector that selected
// nothing, telling a selector the database does not know from one whose
// vulnerable code is not in the programs observed.

// Reasons a symbol was not watched (report.Symbol.Unwatched).
const (
	reasonNotSelected = "not selected by the targets in force"
)

func reasonArmFailed(pid int, err error) string {
	return fmt.Sprintf("its probes could not be armed in process %d: %v", pid, err)
}

func reasonTooManySites(pid, n, max int) string {
	return fmt.Sprintf("the targets needed %d probe sites in process %d, more than -max-sites %d: nothing was armed there", n, pid, max)
}

// IDLookup is an analysis.Entries that can tell whether the database has an
// entry with an ID or alias; *vulndb.Client is one. Without it, the notes
// on targets that select nothing cannot tell an unknown ID from one whose
// vulnerable code is not in the programs.
type IDLookup interface {
	Lookup(ctx context.Context, id string) ([]string, error)
}

// record returns t as the report records it, in force from at: the
// selectors in the order of their lines in the targets file.
func (t Selection) record(at time.Time) report.Selection {
	sel := report.Selection{From: at, File: t.file, Selectors: []report.Selector{}}
	for _, s := range t.Selectors() {
		sel.Selectors = append(sel.Selectors, report.Selector{Selector: s, Line: t.lines[s]})
	}
	slices.SortStableFunc(sel.Selectors, func(a, b report.Selector) int { return cmp.Compare(a.Line, b.Line) })
	return sel
}

// selectorMatches reports whether the one selector sel selects g.
func selectorMatches(sel string, g *group) bool {
	switch {
	case sel == "*":
		return true
	case sel == g.osv || slices.Contains(g.alias, sel):
		return true
	}
	return sel == g.selector() || sel == g.pkg
}

// recordSelection records in the report that t is in force from now, and
// remembers it for the notes on selectors that select nothing. A selection
// that was in force while no process was observed is replaced. The caller
// holds s.mu.
func (s *Session) recordSelection(t Selection) {
	replace := len(s.selections) > 0 && !s.observedAny
	if replace {
		s.selections[len(s.selections)-1] = t.clone()
	} else {
		s.selections = append(s.selections, t.clone())
	}
	s.rec.Select(t.record(time.Now()), replace)
	s.observedAny = len(s.procs) > 0
}

// unmatchedSelector is a selector that selects no vulnerable symbol of any
// binary analysed.
type unmatchedSelector struct {
	sel  string
	file string
	line int
}

func (u unmatchedSelector) where() string {
	if u.file == "" {
		return "target " + quoteShort(u.sel)
	}
	return fmt.Sprintf("targets file %s:%d: %s", u.file, u.line, quoteShort(u.sel))
}

// unmatched returns the selectors of the selections ever in force that
// select nothing in any binary analysed so far, each once.
func (s *Session) unmatched() []unmatchedSelector {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []unmatchedSelector
	seen := map[string]bool{}
	for _, t := range s.selections {
		for _, line := range t.record(time.Time{}).Selectors {
			sel := line.Selector
			if sel == "*" || seen[sel] {
				continue
			}
			seen[sel] = true
			if !s.anyGroupLocked(func(g *group) bool { return selectorMatches(sel, g) }) {
				out = append(out, unmatchedSelector{sel: sel, file: t.file, line: t.lines[sel]})
			}
		}
	}
	return out
}

// anyGroupLocked reports whether f holds for a group, watchable or not, of
// an analysed binary. The caller holds s.mu.
func (s *Session) anyGroupLocked(f func(*group) bool) bool {
	for _, b := range s.bins {
		if slices.ContainsFunc(b.groups, f) || slices.ContainsFunc(b.unwatchable, f) {
			return true
		}
	}
	return false
}

// unmatchedNotes explains each selector that selects nothing: whether the
// database knows it, and if so, why the programs observed do not have it.
func (s *Session) unmatchedNotes(ctx context.Context) []string {
	var notes []string
	for _, u := range s.unmatched() {
		notes = append(notes, s.explainUnmatched(ctx, u))
	}
	return notes
}

// explainUnmatched says why selector u selects nothing.
func (s *Session) explainUnmatched(ctx context.Context, u unmatchedSelector) string {
	known, err := s.knownSelector(ctx, u.sel)
	isID := idPattern.MatchString(u.sel)
	switch {
	case err != nil:
		return fmt.Sprintf("%s: selects no vulnerable symbol in the programs observed, and watches nothing (whether the database knows it could not be checked: %v)", u.where(), err)
	case !known && isID:
		return fmt.Sprintf("%s: no entry of the vulnerability database has this ID or alias: it watches nothing; check the ID", u.where())
	case !known:
		return fmt.Sprintf("%s: no entry of the vulnerability database names this package or symbol: it watches nothing; write symbols as OSV entries do, such as golang.org/x/text/language.Parse or gopkg.in/yaml.v2.Decoder.Decode", u.where())
	case isID && s.inFindings(u.sel):
		return fmt.Sprintf("%s: the entry affects a module version of the programs observed, but none of its vulnerable symbols is in them (imported): it watches nothing", u.where())
	case isID:
		return fmt.Sprintf("%s: the entry is in the vulnerability database, but does not affect the programs observed: it watches nothing", u.where())
	}
	return fmt.Sprintf("%s: the vulnerability database names it vulnerable, but it is not in the programs observed (not linked in, or not an affected version): it watches nothing", u.where())
}

// inFindings reports whether an analysed binary has a finding whose ID or
// alias is id.
func (s *Session) inFindings(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bins {
		if b.rb == nil {
			continue
		}
		for _, f := range b.rb.Findings { // the list and IDs never change
			if f.OSV == id || slices.Contains(f.Aliases, id) {
				return true
			}
		}
	}
	return false
}

// knownSelector reports whether the database knows sel: an entry with that
// ID or alias, or an entry naming that package (and symbol) as vulnerable.
// Answers are remembered for the session.
func (s *Session) knownSelector(ctx context.Context, sel string) (bool, error) {
	s.mu.Lock()
	known, ok := s.known[sel]
	s.mu.Unlock()
	if ok {
		return known, nil
	}
	var err error
	if idPattern.MatchString(sel) {
		l, ok := s.db.(IDLookup)
		if !ok {
			return false, fmt.Errorf("the database cannot look IDs up")
		}
		var ids []string
		ids, err = l.Lookup(ctx, sel)
		known = len(ids) > 0
	} else {
		known, err = s.knownSymbol(ctx, sel)
	}
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	s.known[sel] = known
	s.mu.Unlock()
	return known, nil
}

// knownSymbol reports whether an entry of the database names sel, a
// package or package.Symbol, as vulnerable. It reads the entries of every
// module whose path could hold the package.
func (s *Session) knownSymbol(ctx context.Context, sel string) (bool, error) {
	pkg, sym := splitSelector(sel)
	mods := []string{osv.ModuleStdlib, osv.ModuleToolchain}
	for p := pkg; ; {
		mods = append(mods, p)
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	entries, err := s.db.ByModules(ctx, mods)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		for _, a := range e.Affected {
			if a.EcosystemSpecific == nil {
				continue
			}
			for _, p := range a.EcosystemSpecific.Packages {
				if p.Path != pkg {
					continue
				}
				if sym == "" || len(p.Symbols) == 0 || slices.Contains(p.Symbols, sym) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// warnUnmatched logs a warning, once each, for the selectors that select
// nothing in the binaries analysed so far, without delaying the caller
// (which may hold a process stopped at exec). Nothing is said before a
// binary is analysed.
func (s *Session) warnUnmatched() {
	unmatched := s.unmatched()
	s.mu.Lock()
	analysed := len(s.bins) > 0
	s.mu.Unlock()
	if !analysed || len(unmatched) == 0 {
		return
	}
	// Once the session is closed, there is nothing to warn about.
	s.goUnlessClosed(func() {
		// Close waits for this goroutine. The report needs the same
		// lookups (they are remembered): let them finish.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, u := range unmatched {
			msg := s.explainUnmatched(ctx, u)
			s.mu.Lock()
			done := s.warned[msg]
			s.warned[msg] = true
			s.mu.Unlock()
			if !done {
				s.log.Warn("target selects nothing so far: " + msg)
			}
		}
	})
}

// quoteShort quotes untrusted text for a message: at most 80 bytes of it,
// control and non-printable characters escaped.
func quoteShort(s string) string {
	const max = 80
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
