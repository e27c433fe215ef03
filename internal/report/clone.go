package report

import (
	"slices"
	"time"
)

// Clone returns a deep copy of r.
func (r *Report) Clone() *Report {
	c := *r
	c.Notes = slices.Clone(r.Notes)
	c.Unscanned = slices.Clone(r.Unscanned)
	c.Targets = nil
	for _, sel := range r.Targets {
		sel.Selectors = slices.Clone(sel.Selectors)
		c.Targets = append(c.Targets, sel)
	}
	c.Binaries = make([]*Binary, 0, len(r.Binaries))
	for _, b := range r.Binaries {
		c.Binaries = append(c.Binaries, b.clone())
	}
	if r.Binaries == nil {
		c.Binaries = nil
	}
	return &c
}

func (b *Binary) clone() *Binary {
	c := *b
	c.PIDs = slices.Clone(b.PIDs)
	c.Modules = slices.Clone(b.Modules)
	c.Findings = nil
	for _, f := range b.Findings {
		fc := *f
		fc.Aliases = slices.Clone(f.Aliases)
		fc.Symbols = nil
		for _, s := range f.Symbols {
			fc.Symbols = append(fc.Symbols, s.clone())
		}
		c.Findings = append(c.Findings, &fc)
	}
	if b.Findings != nil && c.Findings == nil {
		c.Findings = []*Finding{}
	}
	return &c
}

func (s *Symbol) clone() *Symbol {
	c := *s
	c.FirstSeen = cloneTime(s.FirstSeen)
	c.LastSeen = cloneTime(s.LastSeen)
	c.Stack = slices.Clone(s.Stack)
	c.Unwatched = slices.Clone(s.Unwatched)
	c.Watched = nil
	for _, p := range s.Watched {
		p.Until = cloneTime(p.Until)
		c.Watched = append(c.Watched, p)
	}
	c.Callsites = nil
	for _, cs := range s.Callsites {
		csc := *cs
		c.Callsites = append(c.Callsites, &csc)
	}
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
