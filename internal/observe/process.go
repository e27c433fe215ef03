package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/procfs"
)

// process is one observed process.
type process struct {
	pid   int
	start uint64 // start time from /proc/PID/stat, which tells a reused PID
	bin   *binary
	armed map[uint64]bool // groups armed now
	fired map[uint64]bool // one-shot groups already hit: not armed again
	// limits caps the sites armed of scoped groups cut short by
	// -max-sites (see plan); under the session's mu.
	limits map[uint64]int
}

// Add observes process pid from now on: it analyses the process's
// executable (once per file) and arms a probe group for every selected
// vulnerable symbol in it. Calls the process made before are not seen; the
// report notes when observation began.
//
// A process that is not a Go program fails with an error wrapping
// binfo.ErrNotGoBinary, one that exits before its probes are armed with
// ErrExited, and a selection needing more than Options.MaxSites probe
// sites with ErrTooManySites (the process is then observed with nothing
// armed, and a narrower SetTargets arms it). The report notes a failure
// only when the caller does (Note). Adding a process twice is a no-op.
func (s *Session) Add(ctx context.Context, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("process %d: not a process ID", pid)
	}
	return s.add(ctx, pid, false)
}

func (s *Session) add(ctx context.Context, pid int, atExec bool) error {
	if s.isClosed() {
		return ErrClosed
	}
	start, err := procStart(pid)
	if errors.Is(err, ErrExited) {
		return fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return err
	}
	t0 := time.Now()
	b, err := s.analyse(ctx, pid)
	tAnalyse := time.Since(t0)
	if err != nil {
		if errors.Is(err, ErrExited) {
			return err
		}
		if b != nil {
			return fmt.Errorf("process %d (%s): %w", pid, b.path, err)
		}
		return err // analyse's errors name the process
	}

	s.armingMu.Lock()
	defer s.armingMu.Unlock()
	s.mu.Lock()
	if s.closed {
		// Close may have removed every probe already: arm nothing more.
		s.mu.Unlock()
		return ErrClosed
	}
	old := s.procs[pid]
	if old != nil && old.start == start && old.bin == b {
		s.mu.Unlock()
		return nil
	}
	p := &process{pid: pid, start: start, bin: b, armed: map[uint64]bool{}, fired: map[uint64]bool{}}
	s.procs[pid] = p
	s.observedAny = true
	targets := s.targets
	s.mu.Unlock()
	if old != nil {
		// The process ran another program (exec) or the PID was reused.
		s.disarmProcess(ctx, old)
	}

	began := time.Now()
	s.rec.AddPID(b.rb, pid)
	s.mu.Lock()
	want := p.selected(targets)
	s.mu.Unlock()
	s.noteUnwatched(p, want)
	limits, n, err := s.plan(want)
	if err != nil {
		for _, g := range want {
			s.notWatched(g, reasonTooManySites(pid, n, s.opts.MaxSites))
		}
		return fmt.Errorf("process %d (%s): the selected targets need %d probe sites, more than the cap of %d: %w; select fewer targets or raise the cap", pid, b.path, n, s.opts.MaxSites, err)
	}
	s.mu.Lock()
	p.limits = limits
	s.mu.Unlock()
	s.noteCut(p, want)
	t1 := time.Now()
	armErr := s.armGroups(ctx, p, want)
	tArm := time.Since(t1)
	st, err := procStart(pid)
	if err != nil && !errors.Is(err, ErrExited) {
		// Not a sign that the process is gone: running out of file
		// descriptors (each armed symbol holds one), say.
		return errors.Join(armErr, fmt.Errorf("process %d (%s): check it after arming: %w", pid, b.path, err))
	}
	// A process that exited but was not reaped yet keeps its /proc/PID/stat
	// and loses its /proc/PID/exe: arming then fails with ENOENT.
	if err != nil || st != start || errors.Is(armErr, os.ErrNotExist) {
		s.disarmProcess(ctx, p)
		s.mu.Lock()
		if s.procs[pid] == p {
			delete(s.procs, pid)
		}
		s.mu.Unlock()
		return fmt.Errorf("process %d (%s): exited while reach armed it: %w", pid, b.path, ErrExited)
	}
	// A process armed at exec was observed from its start, as run's
	// report says of all: a note for each would bury the ones that matter
	// under a test suite's hundreds of processes.
	if !atExec {
		s.rec.Note(fmt.Sprintf("process %d (%s): observed from %s; calls before then are not reported", pid, b.path, began.Format(time.RFC3339Nano)))
	}
	s.log.Debug("observing", "pid", pid, "binary", b.path, "groups", len(want), "analyse", tAnalyse, "arm", tArm)
	s.warnUnmatched() // the targets may name nothing in this program
	return armErr
}

// noteUnwatched records in the report why the symbols of p's binary that
// are not in want, the groups about to be armed in p, go unwatched there:
// not selected, or without a probe site.
func (s *Session) noteUnwatched(p *process, want []*group) {
	for _, g := range p.bin.groups {
		if !slices.Contains(want, g) {
			s.notWatched(g, reasonNotSelected)
		}
	}
	for _, g := range p.bin.unwatchable {
		s.notWatched(g, g.unwatched)
	}
}

// notWatched records that g went unwatched for reason.
func (s *Session) notWatched(g *group, reason string) {
	if err := s.rec.NotWatched(g.ref, reason); err != nil {
		s.log.Warn("record an unwatched symbol", "osv", g.osv, "symbol", g.selector(), "err", err)
	}
}

// watching records that g's probes were armed in one more process at at
// (on) or removed from one (!on). The caller holds s.mu, so that the
// report sees arming and removal in the order the session does.
func (s *Session) watching(g *group, at time.Time, on bool) {
	var err error
	if on {
		err = s.rec.Watching(g.ref, at)
	} else {
		err = s.rec.StopWatching(g.ref, at)
	}
	if err != nil {
		s.log.Warn("record when a symbol is watched", "osv", g.osv, "symbol", g.selector(), "err", err)
	}
}

// selected returns the groups of p's binary that targets selects and that
// have not fired in p.
func (p *process) selected(targets Selection) []*group {
	var out []*group
	for _, g := range p.bin.groups {
		if targets.selects(g) && !p.fired[g.id] {
			out = append(out, g)
		}
	}
	return out
}

// armedIDs returns the groups armed in p.
func (s *Session) armedIDs(p *process) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint64, 0, len(p.armed))
	for id, ok := range p.armed {
		if ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// armGroups arms groups in p, in one engine call per mode (scoped groups
// are armed in count mode, see scope.go); a group that fails leaves the
// others armed. The caller holds armingMu.
func (s *Session) armGroups(ctx context.Context, p *process, groups []*group) error {
	var named, scoped []*group
	for _, g := range groups {
		if g.scoped() {
			scoped = append(scoped, g)
		} else {
			named = append(named, g)
		}
	}
	return errors.Join(s.armMode(ctx, p, s.opts.Mode, named), s.armMode(ctx, p, probe.Count, scoped))
}

// armMode arms groups in p in mode, in one engine call.
func (s *Session) armMode(ctx context.Context, p *process, mode probe.Mode, groups []*group) error {
	spec := probe.ProcessSpec{PID: p.pid, Path: fmt.Sprintf("/proc/%d/exe", p.pid), Mode: mode}
	byID := map[uint64]*group{}
	at := time.Now()
	s.mu.Lock()
	for _, g := range groups {
		sites := p.sitesToArm(g)
		if p.armed[g.id] || p.fired[g.id] || len(sites) == 0 {
			continue
		}
		// Mark it armed first: a hit can arrive before Arm returns.
		p.armed[g.id] = true
		s.watching(g, at, true)
		byID[g.id] = g
		spec.Groups = append(spec.Groups, probe.Group{ID: g.id, Sites: sites})
	}
	s.mu.Unlock()
	if len(spec.Groups) == 0 {
		return nil
	}
	// One call for all the groups: the engine attaches them in batches.
	err := s.engine.Arm(ctx, spec)
	failed, only := probe.FailedGroups(err)
	if err != nil && !only {
		// Arm armed nothing.
		failed = map[uint64]error{}
		for id := range byID {
			failed[id] = err
		}
	}
	var errs []error
	s.mu.Lock()
	for id, g := range byID {
		gerr, bad := failed[id]
		switch {
		case !bad:
			if g.unwatched != "" {
				s.notWatched(g, g.unwatched) // some of its copies
			}
			continue
		case p.armed[id]:
			// Not yet removed by a hit.
			delete(p.armed, id)
			s.watching(g, at, false)
		}
		// A process that is gone (ENOENT) did not run unwatched, and a
		// closed engine means the observation is over.
		if !errors.Is(gerr, os.ErrNotExist) && !errors.Is(gerr, probe.ErrClosed) {
			s.notWatched(g, reasonArmFailed(p.pid, gerr))
		}
		if only {
			errs = append(errs, fmt.Errorf("watch %s (%s) in process %d: %w", g.selector(), g.osv, p.pid, gerr))
		}
	}
	s.mu.Unlock()
	if err != nil && !only {
		return fmt.Errorf("watch %d symbols in process %d: %w", len(byID), p.pid, err)
	}
	return errors.Join(errs...)
}

// disarmGroups removes groups that the targets no longer select from p,
// in parallel, and waits. Groups the engine removed on its own (one-shot)
// are skipped quietly. The caller holds armingMu.
func (s *Session) disarmGroups(ctx context.Context, p *process, ids []uint64) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	now := time.Now()
	for _, id := range ids {
		s.mu.Lock()
		armed := p.armed[id]
		delete(p.armed, id)
		if g := s.groups[id]; g != nil && armed {
			s.watching(g, now, false)
			s.notWatched(g, reasonNotSelected)
		}
		s.mu.Unlock()
		if !armed {
			continue
		}
		wg.Go(func() {
			err := s.engine.Disarm(ctx, p.pid, id)
			if err != nil && !errors.Is(err, probe.ErrNotArmed) && !errors.Is(err, probe.ErrClosed) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// disarmProcess removes every probe of process p, in one engine call.
func (s *Session) disarmProcess(ctx context.Context, p *process) error {
	now := time.Now()
	s.mu.Lock()
	n := len(p.armed)
	for id := range p.armed {
		if g := s.groups[id]; g != nil {
			s.watching(g, now, false)
		}
	}
	clear(p.armed)
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := s.engine.DisarmProcess(ctx, p.pid); err != nil && !errors.Is(err, probe.ErrClosed) {
		return err
	}
	return nil
}

// disarmAll removes every probe of every process.
func (s *Session) disarmAll(ctx context.Context) error {
	s.armingMu.Lock()
	defer s.armingMu.Unlock()
	s.mu.Lock()
	procs := make([]*process, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, p := range procs {
		wg.Go(func() {
			if err := s.disarmProcess(ctx, p); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reap forgets processes that exited and removes their probes.
func (s *Session) reap() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.ReapInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		s.reapOnce(context.Background())
	}
}

func (s *Session) reapOnce(ctx context.Context) {
	s.armingMu.Lock()
	defer s.armingMu.Unlock()
	// armingMu keeps s.procs as it is: read /proc without s.mu, which
	// every hit takes.
	s.mu.Lock()
	procs := make([]*process, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	var gone []*process
	for _, p := range procs {
		if st, err := procStart(p.pid); err != nil || st != p.start {
			gone = append(gone, p)
		}
	}
	s.mu.Lock()
	for _, p := range gone {
		delete(s.procs, p.pid)
	}
	s.mu.Unlock()
	for _, p := range gone {
		if err := s.disarmProcess(ctx, p); err != nil {
			s.log.Warn("remove the probes of an exited process", "pid", p.pid, "err", err)
		}
		s.log.Debug("process exited", "pid", p.pid)
	}
}

// Exited reports whether process pid has exited: it does not exist, or is
// a zombie not yet reaped (procfs.Exited). A caller waiting for the
// processes it added to end polls it.
func (s *Session) Exited(pid int) bool { return procfs.Exited(pid) }

// procStart returns the start time of process pid (field 22 of
// /proc/PID/stat, in clock ticks since boot), which tells a process from a
// later one that reuses its PID.
func procStart(pid int) (uint64, error) {
	st, err := procfs.ReadStat(pid)
	switch {
	case err != nil:
		return 0, procErr(pid, err)
	case st.Exited():
		return 0, fmt.Errorf("process %d: %w", pid, ErrExited)
	}
	return st.Start, nil
}
