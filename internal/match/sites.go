package match

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// siteSet is the computed sites of one compiled function.
type siteSet struct {
	sites []Site
	err   error
}

// addSites fills in the probe sites of every target of findings, computing
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
			for _, t := range s.Targets {
				k.fn = t.Func
				ss := done[k]
				if ss == nil {
					ss = m.sites(sf, m.idx.byName[t.Func], k.scope)
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
// outside it: the others run once the code was entered.
func (m *matcher) sites(sf SiteFinder, c *compiled, scope *Symbol) *siteSet {
	ss := &siteSet{}
	if c == nil {
		return ss
	}
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
			ss.sites = append(ss.sites, Site{Site: s, In: f.Name})
			continue
		}
		sites, err := sf.InlineSites(f, l.inl)
		if err != nil {
			errs = append(errs, fmt.Errorf("sites of %s inlined into %s: %w", c.name, f.Name, err))
			continue
		}
		for _, s := range sites {
			ss.sites = append(ss.sites, Site{Site: s, In: f.Name})
		}
	}
	sort.SliceStable(ss.sites, func(i, j int) bool { return ss.sites[i].PC < ss.sites[j].PC })
	ss.err = errors.Join(errs...)
	return ss
}
