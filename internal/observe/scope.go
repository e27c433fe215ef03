package observe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/probe"
)

// Whole packages and whole modules.
//
// An entry without symbol data makes a whole module vulnerable, and an
// import without symbols a whole package (see package match, scope.go). Its
// group watches the entry points of that code and is reached when code of
// it runs other than its packages' initialization, which runs in every
// program that links it:
//
//   - The group is armed in count mode whatever the session's mode, so
//     that a hit during initialization leaves it armed. The engine then
//     reports the first execution of each site and of each new return
//     address at it; a call from outside, after initialization, comes from
//     a return address of its own.
//   - A hit whose call stack passes through an init function (p.init,
//     p.init.N) of a package of the scope is initialization: it is not
//     recorded. Goroutines that initialization starts are not
//     initialization. The stack is walked by frame pointers to 64 frames:
//     a call deeper than that below an init function would count.
//   - The first hit that is not initialization is recorded, and the group
//     is removed from the process: one-shot per finding, in count mode too
//     (the calls into a module have no single count).
//   - Its sites count against -max-sites after every named symbol's: the
//     scoped groups share what is left, and a group cut short says so in a
//     report note, and is not_watched unless reached.

// scoped reports whether g watches a whole package or module.
func (g *group) scoped() bool { return g.scope != nil }

// own reports whether frame function fn is code of g's symbol: one of its
// targets, or for a whole package or module, any of its code.
func (g *group) own(fn string) bool {
	return g.funcs[fn] || g.scope != nil && g.scope.Covers(match.FuncPackage(fn))
}

// inInit reports whether a hit with these frames ran within the
// initialization of a package of g's scope.
func (g *group) inInit(frames []binfo.Frame) bool {
	for _, f := range frames {
		if match.IsInit(f.Function) && g.scope.Covers(match.FuncPackage(f.Function)) {
			return true
		}
	}
	return false
}

// scopedHit decides whether hit h of scoped group g is recorded: not when
// it is initialization, its stack is unknown, or the group already fired
// in the process. The first hit recorded removes the group from the
// process, in the background.
func (s *Session) scopedHit(g *group, h probe.Hit, frames []binfo.Frame) bool {
	if h.Lost {
		// Without its stack, initialization cannot be told apart.
		s.log.Debug("lost hit of a whole-module group: ignored", "osv", g.osv, "pid", h.PID)
		return false
	}
	if g.inInit(frames) {
		s.log.Debug("package initialization ran code of a whole module or package: not a reach", "osv", g.osv, "scope", g.pkg, "pid", h.PID)
		return false
	}
	s.mu.Lock()
	p := s.procs[h.PID]
	if p == nil || p.bin != g.bin {
		s.mu.Unlock()
		return true
	}
	if p.fired[g.id] {
		s.mu.Unlock()
		return false
	}
	p.fired[g.id] = true
	armed := p.armed[g.id]
	if armed {
		s.watching(g, time.Now(), false)
	}
	delete(p.armed, g.id)
	s.mu.Unlock()
	if !armed {
		return true
	}
	// Not disarmGroups: that records the group as deselected.
	s.wg.Go(func() {
		s.armingMu.Lock()
		defer s.armingMu.Unlock()
		err := s.engine.Disarm(context.Background(), p.pid, g.id)
		if err != nil && !errors.Is(err, probe.ErrNotArmed) && !errors.Is(err, probe.ErrClosed) {
			s.log.Warn("remove a whole-module group after its first hit", "osv", g.osv, "pid", p.pid, "err", err)
		}
	})
	return true
}

// plan checks that groups fit in the cap on probe sites, and returns how
// many sites each scoped group gets: the named symbols' groups get all of
// theirs, and the scoped groups share the rest, the smaller ones whole.
// It fails with ErrTooManySites when the named symbols alone need more.
func (s *Session) plan(groups []*group) (map[uint64]int, int, error) {
	named := 0
	var scoped []*group
	for _, g := range groups {
		if g.scoped() {
			scoped = append(scoped, g)
			continue
		}
		named += len(g.sites)
	}
	if named > s.opts.MaxSites {
		return nil, named, ErrTooManySites
	}
	slices.SortStableFunc(scoped, func(a, b *group) int { return len(a.sites) - len(b.sites) })
	limits := make(map[uint64]int, len(scoped))
	left := s.opts.MaxSites - named
	for i, g := range scoped {
		n := min(len(g.sites), left/(len(scoped)-i))
		limits[g.id] = n
		left -= n
	}
	return limits, named, nil
}

// sitesToArm returns the sites of g to arm in p: all of them, or the
// first p.limits[g.id] for a scoped group cut short by the cap (entry
// sites come first).
func (p *process) sitesToArm(g *group) []probe.Site {
	if n, ok := p.limits[g.id]; ok && n < len(g.sites) {
		return g.sites[:n]
	}
	return g.sites
}

// noteCut notes in the report each scoped group of groups that p watches
// at only some of its sites.
func (s *Session) noteCut(p *process, groups []*group) {
	for _, g := range groups {
		n := len(p.sitesToArm(g))
		if !g.scoped() || n == len(g.sites) {
			continue
		}
		what := "package " + g.pkg
		if g.scope.Scope == match.ScopeModule {
			what = "module " + g.pkg
		}
		s.rec.Note(fmt.Sprintf("%s: %s (%s without symbol data, treated as vulnerable as a whole): %d of its %d entry sites are watched, within -max-sites %d; code entered only through the others is not seen. Raise -max-sites, or select fewer targets, to watch them all.",
			p.bin.path, g.osv, what, n, len(g.sites), s.opts.MaxSites))
		s.notWatched(g, fmt.Sprintf("only %d of its %d entry sites armed in process %d, within -max-sites %d", n, len(g.sites), p.pid, s.opts.MaxSites))
	}
}

// orderScopedSites puts a scoped group's entry sites before its inline
// sites, so that a group cut short keeps the functions' own entries.
func orderScopedSites(sites []probe.Site) {
	slices.SortStableFunc(sites, func(a, b probe.Site) int {
		return btoi(a.Kind == probe.SiteInline) - btoi(b.Kind == probe.SiteInline)
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
