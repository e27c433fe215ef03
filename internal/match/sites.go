package match

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// siteSet is the computed sites of one compiled function.
type siteSet struct {
	sites []Site
	err   error
}

// addSites fills in the probe sites of every compiled function of findings, computing
// those of each compiled function once even when several entries name it.
func (m *matcher) addSites(ctx context.Context, sf SiteFinder, findings []*Finding) error {
	type key struct {
		fn    string
		scope *Symbol // the whole-package or whole-module symbol, or nil
	}
	done := map[key]*siteSet{}
	for _, f := range findings {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range f.Symbols {
			k := key{}
			if s.Scope != "" {
				k.scope = s
			}
			for _, t := range s.Funcs {
				k.fn = t.Name
				ss := done[k]
				if ss == nil {
					ss = m.sites(sf, m.idx.byName[t.Name], k.scope)
					done[k] = ss
				}
				t.Sites = append([]Site(nil), ss.sites...)
				t.SiteErr = ss.err
			}
		}
	}
	return nil
}

// sites computes the sites of c: its entry when it has code of its own,
// and the entries of its inlined copies. For an entry point of a whole
// package or module (scope not nil), only the copies inlined into code
// outside it: the others run once the code was entered. For a symbol
// (scope nil), the sites of a compiled function that is not the symbol's
// own code (see m.notCall) are Uncounted; a whole package or module counts
// entries into it, which wrappers can be.
func (m *matcher) sites(sf SiteFinder, c *compiled, scope *Symbol) *siteSet {
	ss := &siteSet{}
	if c == nil {
		return ss
	}
	uncounted := scope == nil && m.notCall(c.name)
	var errs []error
	for _, l := range c.locs {
		f := &m.bin.Funcs[l.fn]
		if scope != nil && l.inl >= 0 {
			caller := f.Name
			if p := f.Inlines[l.inl].Parent; p >= 0 && p < len(f.Inlines) {
				caller = f.Inlines[p].Func
			}
			if scope.Covers(FuncPackage(caller)) {
				continue
			}
		}
		if l.inl < 0 {
			s, err := sf.EntrySite(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("entry site of %s: %w", f.Name, err))
				continue
			}
			s.Uncounted = s.Uncounted || uncounted
			ss.sites = append(ss.sites, Site{Site: s, In: f.Name})
			continue
		}
		sites, err := sf.InlineSites(f, l.inl)
		if err != nil {
			errs = append(errs, fmt.Errorf("sites of %s inlined into %s: %w", c.name, f.Name, err))
			continue
		}
		for _, s := range sites {
			s.Uncounted = s.Uncounted || uncounted
			ss.sites = append(ss.sites, Site{Site: s, In: f.Name})
		}
	}
	sort.SliceStable(ss.sites, func(i, j int) bool { return ss.sites[i].PC < ss.sites[j].PC })
	ss.err = errors.Join(errs...)
	return ss
}

// notCall reports whether an execution of the compiled function name is
// not a call of the source-level function it belongs to (see osvSymbol):
// a closure or go/defer wrapper inside it, which runs any number of times
// per call, or a wrapper the compiler generates around the function
// itself (a method value's T.M-fm, a pointer receiver's (*T).M for a
// value method), which calls the function or holds an inlined copy of it,
// whose own sites count that call.
func (m *matcher) notCall(name string) bool {
	_, sym := splitFuncName(name)
	if isGeneratedName(sym) {
		return true
	}
	// (*T).M is the compiler's wrapper when T.M, the method on the value
	// receiver, exists as a function or an inlined copy.
	if rest, ok := strings.CutPrefix(sym, "(*"); ok {
		if i := strings.Index(rest, ")."); i >= 0 {
			value := name[:len(name)-len(sym)] + rest[:i] + "." + rest[i+2:]
			return m.idx.byName[value] != nil
		}
	}
	return false
}

// isGeneratedName reports whether sym, the part of a compiled function
// name after its package path, names code the compiler generated inside
// or around a source-level function rather than that function itself: a
// function literal or go/defer wrapper (F.func1, F.func1.2, F.gowrap1,
// F.deferwrap1, (*T).M.func1, init.0.func1), the body of a range-over-func
// loop (F-range1) or a method value wrapper ((*T).M-fm).
func isGeneratedName(sym string) bool {
	parts := splitTop(sym)
	for _, p := range parts {
		if strings.Contains(topLevel(p), "-") {
			return true
		}
	}
	// The parts of the function's own name: F; T.M or (*T).M; init.0.
	own := 1
	switch {
	case len(parts) < 2:
	case strings.HasPrefix(sym, "("):
		own = 2
	case parts[0] == "init" && isDigits(parts[1]):
		own = 2
	case !isClosure(parts[1]):
		own = 2 // a method on a value receiver
	}
	return len(parts) > own
}

// topLevel returns p without the text inside brackets, parentheses and
// braces, where type arguments may hold dashes.
func topLevel(p string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"':
			i = skipQuoted(p, i)
		case c == '[' || c == '(' || c == '{':
			depth++
		case c == ']' || c == ')' || c == '}':
			if depth > 0 {
				depth--
			}
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
