package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/probe/bpfenv"
	"github.com/reach-sca/reach/internal/probe/keeper"
	"github.com/reach-sca/reach/internal/procfs"
)

// engine is the eBPF Engine.
type engine struct {
	log       *slog.Logger
	opts      Options
	objs      *objects
	reader    *ringbuf.Reader
	hits      chan Hit
	done      chan struct{}
	swept     chan struct{}  // closed when the sweeper, which reads the ring buffer's positions, is done
	wg        sync.WaitGroup // the reader, the sweeper, removals and Arm calls
	wallMinus int64          // wall clock minus CLOCK_MONOTONIC, in ns

	delivered atomic.Uint64 // hits sent on hits

	// holder creates and holds every link: the keeper, or this process.
	holder holder
	// batch is how many groups Arm hands holder at once.
	batch int

	mu         sync.Mutex
	flushes    []chan struct{} // Flush calls waiting for the reader
	closed     bool
	multi      *ebpf.Program // nil when using classic uprobes
	classic    *ebpf.Program // loaded on first use
	nextArm    uint32
	current    map[groupInProcess]*arming // by group and process: armed now, or being attached
	byID       map[uint32]*arming         // every arming ever made, by its cookie ID, to decode records
	lostSeen   uint64
	countMu    sync.Mutex                  // serializes counter map readouts with removals
	final      map[countKey]uint64         // counts of removed armings; under countMu
	finalSites map[callsiteCountKey]uint64 // callsite counts of removed armings; under countMu
	multiState string                      // why uprobe_multi is or is not used, for logs
}

// groupInProcess keys an arming: a group in one process (PID 0: every
// process running the file).
type groupInProcess struct {
	pid   int
	group uint64
}

// arming is one group armed in one process.
type arming struct {
	id    uint32
	pid   int
	group uint64
	sites []Site
	mode  Mode
	ready chan struct{} // closed when attaching is done; then held is set

	held bool // the holder holds its links: attaching succeeded
	// Under engine.mu:
	removing bool            // one-shot removal scheduled or done
	reported map[[2]int]bool // (pid, site) whose first hit was delivered
}

func newEngine(ctx context.Context, opts Options) (_ Engine, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HitBuffer <= 0 {
		opts.HitBuffer = 1024
	}
	if opts.RingBytes <= 0 {
		opts.RingBytes = 1 << 20
	}
	opts.RingBytes = bpfenv.RingSize(opts.RingBytes)
	if opts.MaxCounters <= 0 {
		opts.MaxCounters = 1 << 16
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if err := bpfenv.Prepare(); err != nil {
		return nil, err
	}
	if err := checkKernel(); err != nil {
		return nil, err
	}
	e := &engine{
		log:     opts.Logger.With("component", "probe"),
		opts:    opts,
		hits:    make(chan Hit, opts.HitBuffer),
		done:    make(chan struct{}),
		swept:   make(chan struct{}),
		current: map[groupInProcess]*arming{},
		byID:    map[uint32]*arming{},
		final:   map[countKey]uint64{},

		finalSites: map[callsiteCountKey]uint64{},
	}
	e.objs, err = newObjects(opts)
	if err != nil {
		return nil, bpfenv.PermissionHint(err)
	}
	defer func() {
		if err != nil {
			e.closeObjects()
		}
	}()
	if err := e.chooseLinks(); err != nil {
		return nil, err
	}
	e.reader, err = ringbuf.NewReader(e.objs.events)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("read the monotonic clock: %w", err)
	}
	e.wallMinus = time.Now().UnixNano() - ts.Nano()

	e.holder, e.batch = newLocalHolder(), 1
	if opts.NoKeeper {
		// This process holds every link's descriptor.
		e.wg.Go(func() { keeper.GrowFDTable(keeper.FDTableSize) })
		e.log.DebugContext(ctx, "no probe keeper (Options.NoKeeper): a SIGKILL of this process may leave probes in the observed programs")
	} else if k, kerr := keeper.Start(ctx, e.log, e.multi == nil); kerr != nil {
		e.log.WarnContext(ctx, "running without a probe keeper: if this process is killed with SIGKILL, the kernel may leave breakpoints in the observed programs until they exit", "err", kerr)
	} else {
		e.holder, e.batch = keeperHolder{k}, keeperBatch
	}

	e.wg.Add(2)
	go e.read()
	go e.sweep()
	e.log.DebugContext(ctx, "engine ready", "links", e.multiState, "ring_bytes", opts.RingBytes)
	return e, nil
}

// chooseLinks loads the program for uprobe_multi links when the kernel has
// them (and filters them per process), and for classic uprobes otherwise.
func (e *engine) chooseLinks() error {
	switch ok, rel := multiPIDFilterWorks(); {
	case e.opts.Classic:
		e.multiState = "classic (requested)"
	case !ok:
		e.multiState = "classic (kernel " + rel + " filters uprobe_multi by thread, not process; 6.10 fixed it)"
	default:
		prog, err := e.objs.loadProgram(true)
		if err == nil {
			e.multi = prog
			e.multiState = "uprobe_multi"
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return bpfenv.PermissionHint(err)
		}
		e.multiState = "classic (no uprobe_multi program support)"
	}
	e.log.Info("using classic per-site uprobes: detaching them takes about 100 ms each", "reason", e.multiState)
	prog, err := e.objs.loadProgram(false)
	if err != nil {
		return bpfenv.PermissionHint(err)
	}
	e.classic = prog
	return nil
}

func (e *engine) Hits() <-chan Hit { return e.hits }

func (e *engine) Arm(ctx context.Context, spec ProcessSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	if spec.PID > 0 {
		if err := unix.Kill(spec.PID, 0); errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("arm process %d: no such process", spec.PID)
		}
	}
	ex, err := link.OpenExecutable(spec.Path)
	if err != nil {
		return fmt.Errorf("arm process %d: %w", spec.PID, err)
	}
	leave, err := e.enter(nil)
	if err != nil {
		return err
	}
	defer leave()

	var errs []error
	for start := 0; start < len(spec.Groups); start += e.batch {
		if err := ctx.Err(); err != nil {
			// The groups not armed, each as a GroupError, so that
			// FailedGroups tells them from the groups armed before.
			for _, g := range spec.Groups[start:] {
				errs = append(errs, &GroupError{Group: g.ID, Err: err})
			}
			break
		}
		var batch []*arming
		for _, g := range spec.Groups[start:min(start+e.batch, len(spec.Groups))] {
			a, err := e.beginArm(spec, g)
			if err != nil {
				errs = append(errs, fmt.Errorf("arm %s in process %d: %w", spec.Path, spec.PID, &GroupError{Group: g.ID, Err: err}))
				continue
			}
			batch = append(batch, a)
		}
		for i, err := range e.attach(ex, spec.Path, batch) {
			if err := e.endArm(batch[i], err); err != nil {
				errs = append(errs, fmt.Errorf("arm %s in process %d: %w", spec.Path, spec.PID, &GroupError{Group: batch[i].group, Err: err}))
			}
		}
	}
	return errors.Join(errs...)
}

// keeperBatch is how many groups Arm hands the keeper in one message.
const keeperBatch = 256

// beginArm validates g and records its arming in spec's process, to be
// attached.
func (e *engine) beginArm(spec ProcessSpec, g Group) (*arming, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	k := groupInProcess{spec.PID, g.ID}
	e.mu.Lock()
	if e.current[k] != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("group %d: %w", g.ID, ErrArmed)
	}
	e.nextArm++
	if e.nextArm == 0 {
		e.nextArm++ // keep 0 out of cookies, so a zero cookie is recognisably bad
	}
	a := &arming{
		id:       e.nextArm,
		pid:      spec.PID,
		group:    g.ID,
		sites:    append([]Site(nil), g.Sites...),
		mode:     spec.Mode,
		ready:    make(chan struct{}),
		reported: map[[2]int]bool{},
	}
	e.current[k] = a
	e.byID[a.id] = a
	e.mu.Unlock()
	return a, nil
}

// endArm records the outcome of attaching a: that the holder holds its
// links, or the error.
func (e *engine) endArm(a *arming, err error) error {
	k := groupInProcess{a.pid, a.group}
	e.mu.Lock()
	a.held = err == nil
	if err != nil && e.current[k] == a {
		delete(e.current, k)
	}
	close(a.ready)
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("group %d: %w", a.group, err)
	}
	e.log.Debug("armed", "pid", a.pid, "group", a.group, "sites", len(a.sites), "mode", a.mode, "arming", a.id)
	return nil
}

// offsetsCookies returns the file offsets of a's sites and their cookies.
func (a *arming) offsetsCookies() (offsets, cookies []uint64) {
	offsets = make([]uint64, len(a.sites))
	cookies = make([]uint64, len(a.sites))
	for i, s := range a.sites {
		offsets[i] = s.Offset
		cookies[i] = makeCookie(a.id, i, s.Kind, siteMode(s, a.mode))
	}
	return offsets, cookies
}

// attach has the holder attach the armings, all in ex at path, and
// returns the error of each, falling back to classic uprobes when the
// kernel refuses uprobe_multi links.
func (e *engine) attach(ex *link.Executable, path string, armings []*arming) []error {
	errs := make([]error, len(armings))
	if len(armings) == 0 {
		return errs
	}
	e.mu.Lock()
	multi := e.multi
	e.mu.Unlock()
	todo := armings
	idx := make([]int, len(armings))
	for i := range idx {
		idx[i] = i
	}
	if multi != nil {
		res, err := e.holder.attach(ex, path, multi, true, armings)
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
			return errs
		}
		todo, idx = nil, nil
		var cause error
		for i, r := range res {
			switch {
			case r.err == nil:
			case errors.Is(r.err, link.ErrNotSupported):
				todo, idx, cause = append(todo, armings[i]), append(idx, i), r.err
			default:
				errs[i] = attachErr(r.err)
			}
		}
		if len(todo) == 0 {
			return errs
		}
		if err := e.fallBack(cause); err != nil {
			for _, i := range idx {
				errs[i] = err
			}
			return errs
		}
	}
	e.mu.Lock()
	prog := e.classic
	e.mu.Unlock()
	res, err := e.holder.attach(ex, path, prog, false, todo)
	if err != nil {
		for _, i := range idx {
			errs[i] = err
		}
		return errs
	}
	for j, r := range res {
		if r.err == nil {
			continue
		}
		err := attachErr(r.err)
		if a := todo[j]; r.site >= 0 && r.site < len(a.sites) {
			err = fmt.Errorf("site %d at file offset %#x: %w", r.site, a.sites[r.site].Offset, err)
		}
		errs[idx[j]] = err
	}
	return errs
}

// fallBack switches the engine to classic uprobes after the kernel refused
// a uprobe_multi link.
func (e *engine) fallBack(cause error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.classic == nil {
		prog, err := e.objs.loadProgram(false)
		if err != nil {
			return bpfenv.PermissionHint(err)
		}
		e.classic = prog
	}
	if e.multi != nil {
		e.multi.Close()
		e.multi = nil
		e.multiState = "classic (uprobe_multi refused)"
		e.log.Info("uprobe_multi is not supported: falling back to classic per-site uprobes, which take about 100 ms each to detach", "cause", cause)
	}
	return nil
}

func attachErr(err error) error {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %v (run as root, or with CAP_PERFMON)", ErrPermission, err)
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, enotsupp):
		return fmt.Errorf("%w (the kernel cannot probe the instruction at one of the sites: check that each offset starts an instruction it can probe, such as a PUSH RBP)", err)
	}
	return err
}

// removeLinks has the holder close the links of the armings ids, all of
// one process or all of processes that are gone: it waits for them unless
// processGone (see DisarmProcess).
func (e *engine) removeLinks(processGone bool, ids ...uint32) error {
	if processGone {
		return e.holder.drop(ids...)
	}
	return e.holder.close(ids...)
}

// processGone reports whether process pid has exited (procfs.Exited): it
// does not exist, or is a zombie not yet waited for.
func processGone(pid int) bool { return procfs.Exited(pid) }

// enter registers an operation that Close waits for, or fails with
// ErrClosed once Close began. locked, if not nil, runs first under e.mu and
// may refuse the operation with an error. The caller calls leave when the
// operation is done.
func (e *engine) enter(locked func() error) (leave func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if locked != nil {
		if err := locked(); err != nil {
			return nil, err
		}
	}
	e.wg.Add(1)
	return e.wg.Done, nil
}

func (e *engine) Disarm(ctx context.Context, pid int, group uint64) error {
	var a *arming
	leave, err := e.enter(func() error {
		k := groupInProcess{pid, group}
		if a = e.current[k]; a == nil {
			return fmt.Errorf("disarm group %d in process %d: %w", group, pid, ErrNotArmed)
		}
		delete(e.current, k)
		a.removing = true
		return nil
	})
	if err != nil {
		return err
	}
	defer leave()
	return e.remove(a)
}

func (e *engine) DisarmProcess(ctx context.Context, pid int) error {
	var todo []*arming
	leave, err := e.enter(func() error {
		for k, a := range e.current {
			if k.pid == pid {
				delete(e.current, k)
				a.removing = true
				todo = append(todo, a)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer leave()

	// Closing a uprobe_multi link waits for the kernel's grace periods, some
	// 20-70 ms, most of it idle: the holder closes them all at once (the
	// keeper's in one request), then their counts are collected in one pass
	// over the maps. The probes of a process that is gone went with it:
	// the holder then may close its links without being waited for, and
	// the counts are final.
	var errs []error
	var ids []uint32
	for _, a := range todo {
		<-a.ready
		if a.held {
			ids = append(ids, a.id)
		}
	}
	if len(ids) > 0 {
		start := time.Now()
		gone := processGone(pid)
		if err := e.removeLinks(gone, ids...); err != nil {
			errs = append(errs, fmt.Errorf("disarm process %d: %w", pid, err))
		}
		e.log.Debug("disarmed", "pid", pid, "groups", len(ids), "process_gone", gone, "took", time.Since(start))
	}
	if err := e.collect(todo...); err != nil {
		errs = append(errs, fmt.Errorf("disarm process %d: %w", pid, err))
	}
	return errors.Join(errs...)
}

// remove closes a's links, which returns once no handler runs for them any
// more, then moves its counters from the kernel to e.final and
// e.finalSites. The caller has taken a out of e.current.
func (e *engine) remove(a *arming) error {
	errs := []error{e.unlink(a)}
	if err := e.collect(a); err != nil {
		errs = append(errs, fmt.Errorf("disarm: %w", err))
	}
	return errors.Join(errs...)
}

// unlink closes a's links, which returns once no handler runs for them any
// more.
func (e *engine) unlink(a *arming) error {
	<-a.ready
	if !a.held {
		return nil // attaching failed
	}
	start := time.Now()
	err := e.removeLinks(processGone(a.pid), a.id)
	e.log.Debug("disarmed", "pid", a.pid, "group", a.group, "took", time.Since(start))
	if err != nil {
		return fmt.Errorf("disarm group %d in process %d: %w", a.group, a.pid, err)
	}
	return nil
}

// collect moves the counters of removed armings from the kernel maps to
// e.final and e.finalSites. Armings whose attaching failed counted nothing.
func (e *engine) collect(armings ...*arming) error {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	var errs []error
	count := map[uint32]*arming{}
	for _, a := range armings {
		if !a.held {
			continue
		}
		if err := e.collectCounters(a); err != nil {
			errs = append(errs, fmt.Errorf("group %d in process %d: %w", a.group, a.pid, err))
		}
		if a.mode == Count {
			count[a.id] = a
		}
	}
	if len(count) > 0 {
		if err := e.collectCallsites(count); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// collectCallsites moves the callsite counters of the removed count-mode
// armings to e.finalSites. The caller holds e.countMu.
func (e *engine) collectCallsites(armings map[uint32]*arming) error {
	var (
		key   callsiteMapKey
		value uint64
		keys  []callsiteMapKey
	)
	it := e.objs.callsites.Iterate()
	for it.Next(&key, &value) {
		if armings[cookieArm(key.Cookie)] != nil {
			keys = append(keys, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read callsite counters: %w", err)
	}
	for _, k := range keys {
		if err := e.objs.callsites.Lookup(&k, &value); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue // evicted meanwhile
			}
			return fmt.Errorf("read callsite counter: %w", err)
		}
		a := armings[cookieArm(k.Cookie)]
		e.finalSites[callsiteCountKey{int(k.TGID), a.group, cookieSite(k.Cookie), k.Key}] += value
		if err := e.objs.callsites.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete callsite counter: %w", err)
		}
	}
	return nil
}

// collectCounters moves the counters of a removed arming from the kernel
// map to e.final. The caller holds e.countMu.
func (e *engine) collectCounters(a *arming) error {
	var (
		key   counterKey
		value uint64
		keys  []counterKey
	)
	if a.pid > 0 {
		for i, s := range a.sites {
			keys = append(keys, counterKey{Cookie: makeCookie(a.id, i, s.Kind, siteMode(s, a.mode)), TGID: uint32(a.pid)})
		}
	} else {
		it := e.objs.counters.Iterate()
		for it.Next(&key, &value) {
			if cookieArm(key.Cookie) == a.id {
				keys = append(keys, key)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
	}
	for _, k := range keys {
		if err := e.objs.counters.Lookup(&k, &value); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return fmt.Errorf("read counter: %w", err)
		}
		e.final[countKey{int(k.TGID), a.group, cookieSite(k.Cookie)}] += value
		if err := e.objs.counters.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete counter: %w", err)
		}
	}
	return nil
}

// counterKey is the key of the counter map.
type counterKey struct {
	Cookie uint64
	TGID   uint32
	_      uint32
}

// callsiteMapKey is the key of the callsite map.
type callsiteMapKey struct {
	Cookie uint64
	Key    uint64
	TGID   uint32
	_      uint32
}

func (e *engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var left []*arming
	for k, a := range e.current {
		left = append(left, a)
		delete(e.current, k)
	}
	e.mu.Unlock()

	close(e.done)
	// The sweeper reads the ring buffer's positions, which closing the
	// reader unmaps: it must be done first. The reader's goroutine, which
	// blocks in ReadInto, ends with the close.
	<-e.swept
	err := e.reader.Close()
	if err != nil {
		err = fmt.Errorf("close ring buffer reader: %w", err)
	}
	e.wg.Wait()
	// One request each: the holder closes them in parallel.
	ids := map[bool][]uint32{} // by whether the process is gone
	gone := map[int]bool{}
	for _, a := range left {
		<-a.ready
		if !a.held {
			continue
		}
		g, ok := gone[a.pid]
		if !ok {
			g = processGone(a.pid)
			gone[a.pid] = g
		}
		ids[g] = append(ids[g], a.id)
	}
	for g, ids := range ids {
		if uerr := e.removeLinks(g, ids...); uerr != nil {
			err = errors.Join(err, fmt.Errorf("remove probes: %w", uerr))
		}
	}
	// The probes of running processes are gone. Links of processes that
	// are gone too may still be closing in the keeper: it finishes them
	// and exits on its own.
	if serr := e.holder.stop(); serr != nil {
		err = errors.Join(err, serr)
	}
	e.closeObjects()
	close(e.hits)
	return err
}

func (e *engine) closeObjects() {
	if e.multi != nil {
		e.multi.Close()
	}
	if e.classic != nil {
		e.classic.Close()
	}
	if e.objs != nil {
		e.objs.close()
	}
}

// enotsupp is the kernel's internal ENOTSUPP, which some BPF paths return.
const enotsupp = unix.Errno(524)
