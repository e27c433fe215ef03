package observe

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
)

// consumeHits records the engine's hits until the engine closes Hits.
func (s *Session) consumeHits() {
	defer s.wg.Done()
	for h := range s.engine.Hits() {
		s.lastHit.Store(time.Now().UnixNano())
		s.handleHit(h)
		s.handled.Add(1)
	}
}

// drainHits returns when every hit the kernel queued before the call is
// handled (or after a second). With the probes removed, that is all of
// them. If the engine cannot flush, it waits for a quiet spell instead.
func (s *Session) drainHits(ctx context.Context) {
	n, err := s.engine.Flush(ctx)
	if err != nil {
		s.log.Debug("flush the probe engine", "err", err)
		s.waitHitsIdle(100 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(time.Second)
	for s.handled.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// waitHitsIdle waits until no hit is pending and none arrived for quiet,
// or for at most a second.
func (s *Session) waitHitsIdle(quiet time.Duration) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		last := time.Unix(0, s.lastHit.Load())
		if len(s.engine.Hits()) == 0 && time.Since(last) >= quiet {
			return
		}
		time.Sleep(quiet / 4)
	}
}

func (s *Session) handleHit(h probe.Hit) {
	s.mu.Lock()
	g := s.groups[h.Group]
	if g != nil && !g.scoped() && s.opts.Mode == probe.OneShot && !h.Callsite {
		// The engine removes a one-shot group by itself on its first hit.
		if p := s.procs[h.PID]; p != nil && p.bin == g.bin {
			if p.armed[g.id] {
				s.watching(g, time.Now(), false)
			}
			delete(p.armed, g.id)
			p.fired[g.id] = true
		}
	}
	s.mu.Unlock()
	if g == nil {
		s.log.Warn("hit of an unknown probe group", "group", h.Group, "pid", h.PID)
		return
	}
	uncounted := h.Site < len(g.sites) && g.sites[h.Site].Uncounted
	// A whole module or package is watched one-shot in count mode too
	// (scope.go): its one hit stands for at least one call into it.
	lower := g.inexact || g.scoped() && s.opts.Mode == probe.Count
	rh := report.Hit{Time: h.Time, PID: h.PID, Uncounted: uncounted, LowerBound: lower}
	var frames []binfo.Frame
	byReturn := false // the return address alone decides the callsite
	if !h.Lost {
		at := g.symbolPC(h)
		var inner int
		frames, inner = symbolize(g.bin.bin, at, h)
		if h.Kind == probe.SiteInline {
			// An inline site stands for an entry of the inlined copy,
			// whose frames are the inlined function's (or a call nested
			// in it), called from the caller. Should they not name the
			// function, put it in front, as if it had a frame of its own.
			if name := g.inlined[at]; name != "" && !slices.ContainsFunc(frames[:inner], func(f binfo.Frame) bool { return f.Function == name }) {
				frames = append([]binfo.Frame{{Function: name, Inlined: true}}, frames...)
				inner++
			}
		}
		rh.Stack, rh.Callsite = g.callsite(frames, inner)
		byReturn = g.decidedByReturn(frames, inner, h, rh.Callsite)
	}
	if g.scoped() && !s.scopedHit(g, h, frames) {
		return
	}
	if err := s.rec.Record(g.ref, rh); err != nil {
		s.log.Warn("record hit", "osv", g.osv, "symbol", g.selector(), "err", err)
		return
	}
	if s.opts.Mode == probe.Count && !g.scoped() && !h.Lost && !uncounted && rh.Callsite != nil {
		s.mu.Lock()
		k := callsiteKey{h.Group, h.PID, h.Site, h.Key}
		if _, ok := s.callsites[k]; !ok {
			s.callsites[k] = *rh.Callsite
		}
		byRet := callsiteKey{h.Group, h.PID, h.Site, h.Return}
		if _, ok := s.callsites[byRet]; byReturn && !ok {
			s.callsites[byRet] = *rh.Callsite
		}
		s.mu.Unlock()
		// A new stack with a return address counted by itself comes when
		// the kernel evicted that key: add it again.
		if byReturn {
			if err := s.engine.KeyByReturn(context.Background(), h.PID, h.Group, h.Site, h.Return); err != nil {
				s.log.Debug("count a callsite by its return address", "pid", h.PID, "osv", g.osv, "symbol", g.selector(), "err", err)
			}
		}
	}
	if s.opts.OnHit != nil {
		if kind, ok := s.streamKind(g, h, rh); ok {
			s.opts.OnHit(newEvent(g, h, rh, kind))
		}
	}
}

// streamKey is a group's callsite in a process that Options.OnHit was
// told of; the zero frame stands for the group's first hit there.
type streamKey struct {
	group uint64
	pid   int
	at    report.Frame
}

// streamKind decides whether hit rh of g goes to Options.OnHit, and as
// which kind: "first" for the symbol's first hit in the process,
// "callsite" for a later call from a callsite not told of yet. The engine
// reports the first hit of each site, and in count mode of each stack,
// which are neither: a symbol has several sites (inlined copies,
// closures), uncounted hits are no calls (rh.Callsite is then not the
// symbol's caller), and many stacks pass one application line.
func (s *Session) streamKind(g *group, h probe.Hit, rh report.Hit) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := streamKey{group: g.id, pid: h.PID}
	if !s.streamed[first] {
		s.streamed[first] = true
		if rh.Callsite != nil && !rh.Uncounted {
			s.streamed[streamKey{g.id, h.PID, *rh.Callsite}] = true
		}
		return "first", true
	}
	if rh.Uncounted || rh.Callsite == nil {
		return "", false
	}
	k := streamKey{g.id, h.PID, *rh.Callsite}
	if s.streamed[k] {
		return "", false
	}
	s.streamed[k] = true
	return "callsite", true
}

// callsiteKey is what the kernel counts callsites by in count mode: a
// group's counted site in a process and the hit's stack key (probe.Hit.Key:
// a hash of the return address and the user stack). The engine reports
// the first execution of each key as a hit, whose callsite then stands for
// all the key's executions: they had the same return address and stack,
// from which the callsite is picked, however far up the stack the
// application frame is. Where the return address alone decides the
// callsite, the kernel is told to count by it (probe.Engine.KeyByReturn):
// the key is then the return address itself, which no stack key equals.
type callsiteKey struct {
	group uint64
	pid   int
	site  int
	key   uint64
}

// applyCallsiteCounts sets each callsite's hits to the sum of the kernel's
// counts of the keys whose first hit had that callsite. Keys with no hit
// recorded yet are left for a later Sync.
func (s *Session) applyCallsiteCounts(counts []probe.CallsiteCount) error {
	type at struct {
		g  *group
		cs report.Frame
	}
	sums := map[at]uint64{}
	s.mu.Lock()
	for _, c := range counts {
		g := s.groups[c.Group]
		cs, ok := s.callsites[callsiteKey{c.Group, c.PID, c.Site, c.Key}]
		if g == nil || !ok {
			continue
		}
		sums[at{g, cs}] += c.Hits
	}
	s.mu.Unlock()
	var errs []error
	for k, n := range sums {
		if err := s.rec.SetCallsiteHits(k.g.ref, k.cs, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// decidedByReturn reports whether cs, the callsite picked from the frames
// of hit h, follows from the probed site and h's return address alone,
// whatever the stack above: it is in the main module, and it is among the
// frames of the probed instruction (inner of them) and of the return
// address, which callerPCs puts first.
func (g *group) decidedByReturn(frames []binfo.Frame, inner int, h probe.Hit, cs *report.Frame) bool {
	if cs == nil || h.Return == 0 || h.Return <= h.Bias {
		return false
	}
	if pcs := callerPCs(h); len(pcs) == 0 || pcs[0] != h.Return {
		return false
	}
	if !inMainModule(match.FuncPackage(cs.Function), g.bin.bin.Main.Path) {
		return false
	}
	n := min(inner+len(g.bin.bin.Frames(h.Return-h.Bias-1)), len(frames))
	_, near := g.callsite(frames[:n], inner)
	return near != nil && *near == *cs
}

// symbolPC returns the link-time PC that hit h symbolizes as: the probed
// instruction's, or the entry of the inlined copy that the probe was put
// after.
func (g *group) symbolPC(h probe.Hit) uint64 {
	pc := h.IP - h.Bias
	if mark, ok := g.marks[pc]; ok {
		return mark
	}
	return pc
}

// symbolize returns the logical frames of a hit whose probed instruction
// symbolizes as the link-time address at, innermost first, and how many of
// them describe that instruction (the rest are its callers). Return
// addresses are turned into link-time ones with h.Bias and symbolized as
// pc-1.
func symbolize(bin *binfo.Binary, at uint64, h probe.Hit) ([]binfo.Frame, int) {
	frames := bin.Frames(at)
	inner := len(frames)
	for _, pc := range callerPCs(h) {
		if pc == 0 || pc-h.Bias == 0 {
			continue
		}
		frames = append(frames, bin.Frames(pc-h.Bias-1)...)
	}
	return frames, inner
}

// callerPCs returns the return addresses of a hit, innermost first: at an
// entry or push-bp site the kernel's stack walk starts at the probed
// function's caller's caller (the function has not pushed its frame
// pointer yet), so the direct caller comes from Return; at an inline site
// the enclosing function has its frame, and the walk includes its return
// address. The walk's first element is the probed instruction itself.
func callerPCs(h probe.Hit) []uint64 {
	stack := h.Stack
	if len(stack) > 0 && stack[0] == h.IP {
		stack = stack[1:]
	}
	switch h.Kind {
	case probe.SiteEntry, probe.SitePushBP:
		if h.Return != 0 && (len(stack) == 0 || stack[0] != h.Return) {
			return append([]uint64{h.Return}, stack...)
		}
		return stack
	default:
		if len(stack) == 0 && h.Return != 0 {
			return []uint64{h.Return}
		}
		return stack
	}
}

// callsite returns the report stack of a hit, from the vulnerable function
// outwards, and its callsite: the nearest caller in the main module, else
// the nearest one outside the vulnerable module and the standard library,
// else the direct caller. Frames of the vulnerable symbol itself (its
// targets, inlined helpers at the probed instruction, compiler wrappers)
// are not callers. inner is the number of frames of the probed
// instruction.
func (g *group) callsite(frames []binfo.Frame, inner int) ([]report.Frame, *report.Frame) {
	start := -1
	for i, f := range frames {
		if g.own(f.Function) {
			start = i
			break
		}
	}
	if start < 0 {
		// The symbol's name is not in the frames (it should be): take the
		// probed instruction's innermost frame as the symbol.
		start = 0
	}
	if start >= len(frames) {
		return nil, nil
	}
	stack := make([]report.Frame, 0, len(frames)-start)
	for _, f := range frames[start:] {
		stack = append(stack, report.Frame{Function: f.Function, File: f.File, Line: f.Line})
	}
	var callers []report.Frame
	for _, f := range stack[1:] {
		if g.own(f.Function) || f.File == "<autogenerated>" {
			continue
		}
		callers = append(callers, f)
	}
	if len(callers) == 0 {
		return stack, nil
	}
	mainPath := g.bin.bin.Main.Path
	for _, f := range callers {
		if inMainModule(match.FuncPackage(f.Function), mainPath) {
			return stack, &f
		}
	}
	for _, f := range callers {
		pkg := match.FuncPackage(f.Function)
		if !inModule(pkg, g.module) && !isStdlib(pkg) {
			return stack, &f
		}
	}
	return stack, &callers[0]
}

func inMainModule(pkg, mainPath string) bool {
	return pkg == "main" || (mainPath != "" && inModule(pkg, mainPath))
}

func inModule(pkg, mod string) bool {
	return pkg == mod || strings.HasPrefix(pkg, mod+"/")
}

// isStdlib reports whether pkg is a standard library package: its first
// path element has no dot. Functions without a package (linker symbols)
// count as the runtime's.
func isStdlib(pkg string) bool {
	if pkg == "main" {
		return false
	}
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}
