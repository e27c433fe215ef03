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
	done := map[string]*siteSet{}
	for _, f := range findings {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range f.Symbols {
			for _, t := range s.Targets {
				ss := done[t.Func]
				if ss == nil {
					ss = m.sites(sf, m.idx.byName[t.Func])
					done[t.Func] = ss
				}
				t.Sites = append([]Site(nil), ss.sites...)
				t.SiteErr = ss.err
			}
		}
	}
	return nil
}

// sites computes the sites of c: its entry when it has code of its own,
// and the entries of its inlined copies.
func (m *matcher) sites(sf SiteFinder, c *compiled) *siteSet {
	ss := &siteSet{}
	if c == nil {
		return ss
	}
	var errs []error
	for _, l := range c.locs {
		f := &m.bin.Funcs[l.fn]
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
