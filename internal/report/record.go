package report

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnknownSymbol reports a SymbolRef whose symbol is not part of the report
// a Recorder updates.
var ErrUnknownSymbol = errors.New("symbol not in report")

// SymbolRef names a symbol of a finding of a binary of the report: where
// a Recorder records what happens to it (hits, watching).
type SymbolRef struct {
	Binary  *Binary
	Finding *Finding
	Symbol  *Symbol
}

// Hit is one observed execution (or, with Count, several) of a watched symbol.
type Hit struct {
	Time time.Time
	// PID is the process that ran the symbol; 0 when unknown.
	PID int
	// Count is the number of executions this hit stands for, such as a
	// counter read from the kernel; 0 means 1.
	Count uint64
	// Uncounted is whether the hit shows only that the symbol ran, not a
	// call of it (code the compiler generated inside it, such as a
	// closure, ran): it adds no hits and no callsite.
	Uncounted bool
	// LowerBound is whether the symbol's hits count at least, not exactly,
	// its calls (see Symbol.HitsLowerBound).
	LowerBound bool
	// Callsite is the application frame the symbol was called from: the
	// nearest frame in the main module, else the nearest one outside the
	// vulnerable module and the standard library, else the direct caller.
	// Nil when unknown.
	Callsite *Frame
	// Stack is the symbolized user stack, innermost first. The symbol keeps
	// the stack of its first hit only.
	Stack []Frame
}

// Recorder merges runtime hits into a report. It is safe for concurrent use.
// While a Recorder is in use, read the report only through Snapshot.
type Recorder struct {
	mu sync.Mutex
	r  *Report
	// armed counts, per symbol, the processes its probes are armed in.
	armed map[*Symbol]int
}

// NewRecorder returns a Recorder that updates r in place.
func NewRecorder(r *Report) *Recorder {
	return &Recorder{r: r}
}

// Record merges h into t's symbol: it adds to the hits, widens first and last
// seen, counts the callsite (callsites are the same when function, file and
// line are), keeps the first hit's stack, records the PID on the binary and
// marks the symbol and its finding reached.
func (rec *Recorder) Record(t SymbolRef, h Hit) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.checkRef("record hit", t); err != nil {
		return err
	}
	recordHit(t.Symbol, h)
	if t.Finding.Status.Rank() < Reached.Rank() {
		t.Finding.Status = Reached
	}
	if h.PID != 0 && !slices.Contains(t.Binary.PIDs, h.PID) {
		t.Binary.PIDs = append(t.Binary.PIDs, h.PID)
		slices.Sort(t.Binary.PIDs)
	}
	return nil
}

// Note adds a warning to the report's notes, once.
func (rec *Recorder) Note(msg string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Contains(rec.r.Notes, msg) {
		rec.r.Notes = append(rec.r.Notes, msg)
	}
}

// Snapshot returns a deep copy of the report as it stands.
func (rec *Recorder) Snapshot() *Report {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.r.Clone()
}

func recordHit(s *Symbol, h Hit) {
	n := h.Count
	if n == 0 {
		n = 1
	}
	if h.Uncounted {
		n = 0
	}
	s.HitsLowerBound = s.HitsLowerBound || h.LowerBound
	first := s.Hits == 0
	s.Hits += n
	s.Status = Reached
	if !h.Time.IsZero() {
		t := h.Time
		if s.FirstSeen == nil || t.Before(*s.FirstSeen) {
			s.FirstSeen = &t
			// The stack belongs to the earliest hit we know of.
			if len(h.Stack) > 0 {
				s.Stack = slices.Clone(h.Stack)
			}
		}
		if s.LastSeen == nil || t.After(*s.LastSeen) {
			t := h.Time
			s.LastSeen = &t
		}
	}
	if first && len(s.Stack) == 0 && len(h.Stack) > 0 {
		s.Stack = slices.Clone(h.Stack)
	}
	if c := h.Callsite; c != nil && !h.Uncounted {
		callsite(s, *c).Hits += n
	}
}

// checkRef returns an error wrapping ErrUnknownSymbol, its text
// starting with op, unless t names a symbol of a finding of a binary.
// The caller holds rec.mu, which guards the binary's findings.
func (rec *Recorder) checkRef(op string, t SymbolRef) error {
	if t.Binary == nil || t.Finding == nil || t.Symbol == nil {
		return fmt.Errorf("%s: incomplete symbol reference (binary, finding and symbol are all required): %w", op, ErrUnknownSymbol)
	}
	if !slices.Contains(t.Finding.Symbols, t.Symbol) {
		return fmt.Errorf("%s of %s: symbol is not one of finding %s's: %w", op, symbolName(t.Symbol), t.Finding.OSV, ErrUnknownSymbol)
	}
	if !slices.Contains(t.Binary.Findings, t.Finding) {
		return fmt.Errorf("%s of %s: finding %s is not one of binary %s's: %w", op, symbolName(t.Symbol), t.Finding.OSV, t.Binary.Path, ErrUnknownSymbol)
	}
	return nil
}

// callsite returns s's callsite at f (the same function, file and line),
// adding it with no hits, in order, when s does not have it yet.
func callsite(s *Symbol, f Frame) *Callsite {
	i := slices.IndexFunc(s.Callsites, func(c *Callsite) bool {
		return c.Function == f.Function && c.File == f.File && c.Line == f.Line
	})
	if i >= 0 {
		return s.Callsites[i]
	}
	c := &Callsite{Function: f.Function, File: f.File, Line: f.Line}
	s.Callsites = append(s.Callsites, c)
	slices.SortFunc(s.Callsites, compareCallsites)
	return c
}

func compareCallsites(a, b *Callsite) int {
	if a.File != b.File {
		if a.File < b.File {
			return -1
		}
		return 1
	}
	if a.Line != b.Line {
		return a.Line - b.Line
	}
	if a.Function < b.Function {
		return -1
	}
	if a.Function > b.Function {
		return 1
	}
	return 0
}

// symbolName is the symbol as people write it: "pkg.Name", the package
// path for a whole-package symbol, "module M" for a whole module.
func symbolName(s *Symbol) string {
	if s.Scope == ScopeModule {
		return "module " + s.Package
	}
	if s.Name == "" {
		return s.Package
	}
	return s.Package + "." + s.Name
}

// scopeSentence says in a sentence how much of the code f treats as
// vulnerable when the entry lacks symbol data, or "".
func scopeSentence(f *Finding) string {
	var mods, pkgs []string
	for _, s := range f.Symbols {
		switch s.Scope {
		case ScopeModule:
			mods = append(mods, s.Package)
		case ScopePackage:
			pkgs = append(pkgs, s.Package)
		}
	}
	if f.WholeModule && len(mods) == 0 {
		mods = append(mods, f.Module)
	}
	var out []string
	if len(mods) > 0 {
		what := "the whole module is"
		if len(mods) > 1 {
			what = "each whole module is"
		}
		out = append(out, fmt.Sprintf("The entry has no symbol data for %s: %s treated as vulnerable (linked when any of its code is in the binary, reached when any of it runs other than package initialization).", strings.Join(mods, ", "), what))
	}
	if len(pkgs) > 0 {
		out = append(out, fmt.Sprintf("The entry lists %s without symbols: the whole package is treated as vulnerable (reached when any of its code runs other than package initialization).", strings.Join(pkgs, ", ")))
	}
	return strings.Join(out, " ")
}

// entered is the function through which the first hit of a whole-package
// or whole-module symbol entered its code, from its stack, or "".
func entered(s *Symbol) string {
	if s.Scope == "" || len(s.Stack) == 0 {
		return ""
	}
	return s.Stack[0].Function
}
