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
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

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
	// dropped is set once the keeper was left to close the links of a
	// process that is gone: Close then does not wait for the keeper.
	dropped atomic.Bool

	mu         sync.Mutex
	flushes    []chan struct{} // Flush calls waiting for the reader
	closed     bool
	multi      *ebpf.Program // nil when using classic uprobes
	classic    *ebpf.Program // loaded on first use
	nextArm    uint32
	armed      map[armKey]*arming // armed now, or being attached
	arms       map[uint32]*arming // every arming ever made, to decode records
	lostSeen   uint64
	countMu    sync.Mutex                  // serializes counter map readouts with removals
	final      map[countKey]uint64         // counts of removed armings; under countMu
	finalSites map[callsiteCountKey]uint64 // callsite counts of removed armings; under countMu
	multiState string                      // why uprobe_multi is or is not used, for logs
	keeper     *keeper                     // creates and owns the links; nil without one
}

type armKey struct {
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
	ready chan struct{} // closed when attaching is done; then links is set

	links []link.Link
	kept  bool // the keeper holds the links
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
	opts.RingBytes = ringSize(opts.RingBytes)
	if opts.MaxCounters <= 0 {
		opts.MaxCounters = 1 << 16
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the locked memory limit for BPF maps: %w", err)
	}
	if err := checkKernel(); err != nil {
		return nil, err
	}
	e := &engine{
		log:   opts.Logger.With("component", "probe"),
		opts:  opts,
		hits:  make(chan Hit, opts.HitBuffer),
		done:  make(chan struct{}),
		swept: make(chan struct{}),
		armed: map[armKey]*arming{},
		arms:  map[uint32]*arming{},
		final: map[countKey]uint64{},

		finalSites: map[callsiteCountKey]uint64{},
	}
	e.objs, err = newObjects(opts)
	if err != nil {
		return nil, permissionHint(err)
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

	if opts.NoKeeper {
		// This process holds every link's descriptor.
		e.wg.Go(func() { growFDTable(fdTableSize) })
		e.log.DebugContext(ctx, "no probe keeper (Options.NoKeeper): a SIGKILL of this process may leave probes in the observed programs")
	} else if e.keeper, err = startKeeper(ctx, e.log, e.multi == nil); err != nil {
		e.log.WarnContext(ctx, "running without a probe keeper: if this process is killed with SIGKILL, the kernel may leave breakpoints in the observed programs until they exit", "err", err)
		e.keeper, err = nil, nil
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
			return permissionHint(err)
		}
		e.multiState = "classic (no uprobe_multi program support)"
	}
	e.log.Info("using classic per-site uprobes: detaching them takes about 100 ms each", "reason", e.multiState)
	prog, err := e.objs.loadProgram(false)
	if err != nil {
		return permissionHint(err)
	}
	e.classic = prog
	return nil
}

func permissionHint(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: %v (run as root, or with CAP_BPF and CAP_PERFMON)", ErrPermission, err)
	}
	return err
}

func ringSize(n int) int {
	size := unix.Getpagesize()
	for size < n {
		size *= 2
	}
	return size
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

	if e.keeper != nil {
		return e.armKept(ctx, spec)
	}
	var errs []error
	for i, g := range spec.Groups {
		if err := ctx.Err(); err != nil {
			// As armKept does: the groups not armed, each as a
			// GroupError, so that FailedGroups tells them from the
			// groups armed before.
			for _, g := range spec.Groups[i:] {
				errs = append(errs, &GroupError{Group: g.ID, Err: err})
			}
			break
		}
		if err := e.armGroup(ex, spec, g); err != nil {
			errs = append(errs, fmt.Errorf("arm %s in process %d: %w", spec.Path, spec.PID, &GroupError{Group: g.ID, Err: err}))
		}
	}
	return errors.Join(errs...)
}

func (e *engine) armGroup(ex *link.Executable, spec ProcessSpec, g Group) error {
	a, err := e.beginArm(spec, g)
	if err != nil {
		return err
	}
	links, err := e.attach(ex, a)
	return e.endArm(a, links, false, err)
}

// beginArm validates g and records its arming in spec's process, to be
// attached.
func (e *engine) beginArm(spec ProcessSpec, g Group) (*arming, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	k := armKey{spec.PID, g.ID}
	e.mu.Lock()
	if e.armed[k] != nil {
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
	e.armed[k] = a
	e.arms[a.id] = a
	e.mu.Unlock()
	return a, nil
}

// endArm records the outcome of attaching a: its links, or that the keeper
// holds them, or the error.
func (e *engine) endArm(a *arming, links []link.Link, kept bool, err error) error {
	k := armKey{a.pid, a.group}
	e.mu.Lock()
	a.links = links
	a.kept = kept && err == nil
	if err != nil && e.armed[k] == a {
		delete(e.armed, k)
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

// attached reports whether a's probes were attached; a is ready.
func (a *arming) attached() bool { return a.links != nil || a.kept }

func (e *engine) attach(ex *link.Executable, a *arming) ([]link.Link, error) {
	offsets, cookies := a.offsetsCookies()
	e.mu.Lock()
	multi := e.multi
	e.mu.Unlock()
	if multi != nil {
		l, err := ex.UprobeMulti(nil, multi, &link.UprobeMultiOptions{
			Addresses: offsets,
			Cookies:   cookies,
			PID:       uint32(a.pid),
		})
		if err == nil {
			return []link.Link{l}, nil
		}
		if !errors.Is(err, link.ErrNotSupported) {
			return nil, attachErr(err)
		}
		if err := e.fallBack(err); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	prog := e.classic
	e.mu.Unlock()
	links := make([]link.Link, 0, len(a.sites))
	for i, off := range offsets {
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: off, Cookie: cookies[i], PID: a.pid})
		if err != nil {
			closeLinks(links)
			return nil, fmt.Errorf("site %d at file offset %#x: %w", i, off, attachErr(err))
		}
		links = append(links, l)
	}
	return links, nil
}

// fallBack switches the engine to classic uprobes after the kernel refused
// a uprobe_multi link.
func (e *engine) fallBack(cause error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.classic == nil {
		prog, err := e.objs.loadProgram(false)
		if err != nil {
			return permissionHint(err)
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

// unkeep has the keeper close the links of the armings ids, all of one
// process or all of processes that are gone: it waits for them unless
// their processes are gone (see DisarmProcess).
func (e *engine) unkeep(gone bool, ids ...uint32) error {
	if gone {
		e.dropped.Store(true)
		return e.keeper.drop(ids...)
	}
	return e.keeper.close(ids...)
}

// processGone reports whether process pid has exited (procfs.Exited): it
// does not exist, or is a zombie not yet waited for.
func processGone(pid int) bool { return procfs.Exited(pid) }

func closeLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
}

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
		k := armKey{pid, group}
		if a = e.armed[k]; a == nil {
			return fmt.Errorf("disarm group %d in process %d: %w", group, pid, ErrNotArmed)
		}
		delete(e.armed, k)
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
		for k, a := range e.armed {
			if k.pid == pid {
				delete(e.armed, k)
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
	// 20-70 ms, most of it idle: close them all at once (the keeper's in one
	// request), then collect their counts in one pass over the maps. The
	// probes of a process that is gone went with it: the keeper then closes
	// its links without being waited for, and the counts are final.
	errs := make([]error, len(todo)+2)
	var kept []uint32
	var wg sync.WaitGroup
	for i, a := range todo {
		<-a.ready
		if a.kept {
			kept = append(kept, a.id)
			continue
		}
		wg.Go(func() { errs[i] = e.unlink(a) })
	}
	if len(kept) > 0 {
		start := time.Now()
		gone := processGone(pid)
		if err := e.unkeep(gone, kept...); err != nil {
			errs[len(todo)+1] = fmt.Errorf("disarm process %d: %w", pid, err)
		}
		e.log.Debug("disarmed", "pid", pid, "groups", len(kept), "kept", true, "process_gone", gone, "took", time.Since(start))
	}
	wg.Wait()
	if err := e.collect(todo...); err != nil {
		errs[len(todo)] = fmt.Errorf("disarm process %d: %w", pid, err)
	}
	return errors.Join(errs...)
}

// remove closes a's links, which returns once no handler runs for them any
// more, then moves its counters from the kernel to e.final and
// e.finalSites. The caller has taken a out of e.armed.
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
	start := time.Now()
	var errs []error
	for _, l := range a.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.kept {
		if err := e.unkeep(processGone(a.pid), a.id); err != nil {
			errs = append(errs, err)
		}
	}
	if !a.attached() {
		return nil // attaching failed
	}
	e.log.Debug("disarmed", "pid", a.pid, "group", a.group, "links", len(a.links), "kept", a.kept, "took", time.Since(start))
	if err := errors.Join(errs...); err != nil {
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
		if !a.attached() {
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
	for k, a := range e.armed {
		left = append(left, a)
		delete(e.armed, k)
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
	var wg sync.WaitGroup
	for _, a := range left {
		<-a.ready
		wg.Go(func() { closeLinks(a.links) })
	}
	wg.Wait()
	if e.keeper != nil {
		// One request each: the keeper closes them in parallel.
		ids := map[bool][]uint32{} // by whether the process is gone
		gone := map[int]bool{}
		for _, a := range left {
			if !a.kept {
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
			if uerr := e.unkeep(g, ids...); uerr != nil {
				err = errors.Join(err, fmt.Errorf("remove probes: %w", uerr))
			}
		}
		// The probes of running processes are gone. Links of processes
		// that are gone too may still be closing in the keeper: it
		// finishes them and exits on its own.
		if e.dropped.Load() {
			e.keeper.release()
		} else if serr := e.keeper.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
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
