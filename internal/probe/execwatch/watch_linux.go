package execwatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/probe/bpfenv"
	"github.com/reach-sca/reach/internal/procfs"
)

// Watcher stops followed processes when they execute a program, so
// that probes can be armed before the program runs any code, and reports
// them on Execs. A process is followed when Follow names it or when a
// followed process forks it: the descendants of a followed process are
// followed too. It is safe for concurrent use.
//
// It uses raw tracepoints on sched_process_fork, sched_process_exec and
// sched_process_exit, and the kernel's BTF to find the thread group of a
// forked task. The stop is a SIGSTOP sent by the kernel (bpf_send_signal)
// at exec: a parent that waits for its children with WUNTRACED sees it.
// Processes the watcher stopped stay stopped until Continue: keep reading
// Execs.
type Watcher struct {
	log      *slog.Logger
	followed *ebpf.Map
	events   *ebpf.Map
	progs    []*ebpf.Program
	links    []link.Link
	reader   *ringbuf.Reader
	execs    chan Exec
	stop     chan struct{} // closed by Close: ends the sweeper
	wg       sync.WaitGroup
	once     sync.Once
}

// New loads and attaches the watcher's programs. It fails with
// bpfenv.ErrPermission or bpfenv.ErrNotSupported, naming what is missing.
func New(ctx context.Context, opts Options) (_ *Watcher, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxFollowed <= 0 {
		opts.MaxFollowed = 1 << 16
	}
	if err := bpfenv.Prepare(); err != nil {
		return nil, err
	}
	tgidOff, err := taskTgidOffset(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		log:   opts.Logger.With("component", "exec-watcher"),
		execs: make(chan Exec, 256),
		stop:  make(chan struct{}),
	}
	defer func() {
		if err != nil {
			w.closeObjects()
		}
	}()
	w.followed, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "reach_followed", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: uint32(opts.MaxFollowed),
	})
	if err != nil {
		return nil, bpfenv.PermissionHint(fmt.Errorf("create followed-process map: %w", err))
	}
	w.events, err = ebpf.NewMap(&ebpf.MapSpec{Name: "reach_execs", Type: ebpf.RingBuf, MaxEntries: uint32(bpfenv.RingSize(64 << 10))})
	if err != nil {
		return nil, bpfenv.PermissionHint(fmt.Errorf("create exec ring buffer: %w", err))
	}
	for _, tp := range []struct {
		name string
		ins  asm.Instructions
	}{
		{"sched_process_fork", w.forkProgram(tgidOff)},
		{"sched_process_exec", w.execProgram()},
		{"sched_process_exit", w.exitProgram()},
	} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "reach_" + tp.name[len("sched_process_"):], Type: ebpf.RawTracepoint,
			Instructions: tp.ins, License: "Dual MIT/GPL",
		})
		if err != nil {
			return nil, bpfenv.PermissionHint(fmt.Errorf("load the %s program: %w", tp.name, err))
		}
		w.progs = append(w.progs, prog)
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: prog})
		if err != nil {
			return nil, bpfenv.PermissionHint(fmt.Errorf("attach to tracepoint %s: %w", tp.name, err))
		}
		w.links = append(w.links, l)
	}
	w.reader, err = ringbuf.NewReader(w.events)
	if err != nil {
		return nil, fmt.Errorf("open exec ring buffer reader: %w", err)
	}
	w.wg.Add(2)
	go w.read()
	go w.sweep()
	w.log.DebugContext(ctx, "exec watcher ready", "task_tgid_offset", tgidOff)
	return w, nil
}

// Stack slots of the watcher's programs.
const (
	fpTgid  = -8  // u32 key, or u64 event
	fpChild = -16 // u32 child tgid
	fpValue = -24 // u32 1
)

const sigStop = 19

// forkProgram follows the child of a followed process: raw tracepoint
// sched_process_fork(parent, child). The child of a process that is not
// followed is made unfollowed: its PID may be that of a followed process
// that exited (see exitProgram).
func (w *Watcher) forkProgram(tgidOff uint32) asm.Instructions {
	return slices.Concat(asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		// child->tgid
		asm.LoadMem(asm.R3, asm.R6, 8, asm.DWord),
		asm.Add.Imm(asm.R3, int32(tgidOff)),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, fpChild),
		asm.Mov.Imm(asm.R2, 4),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "exit"),
	}, w.lookupCurrent(), asm.Instructions{
		asm.JNE.Imm(asm.R0, 0, "follow"),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpChild),
		asm.FnMapDeleteElem.Call(),
		asm.Ja.Label("exit"),
		asm.StoreImm(asm.RFP, fpValue, followedLive, asm.Word).WithSymbol("follow"),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpChild),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpValue),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	})
}

// lookupCurrent looks the current process up in the followed map: R0 is
// the address of its value, or 0 when it is not followed. It leaves the
// process's ID at fpTgid, as a u64 (the exec program's event).
func (w *Watcher) lookupCurrent() asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, fpTgid, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTgid),
		asm.FnMapLookupElem.Call(),
	}
}

// Values of the followed map.
const (
	followedLive = 1
	// followedLeaderExited marks a followed process whose main thread
	// exited: the process is gone, or another of its threads is executing
	// a program (the kernel ends the main thread first, and the thread
	// that executes takes over its PID). The exec program follows it on;
	// the sweeper forgets it once the process is gone.
	followedLeaderExited = 2
)

// execProgram stops a followed process that executed a program and reports
// it: raw tracepoint sched_process_exec, which runs in the process.
func (w *Watcher) execProgram() asm.Instructions {
	return slices.Concat(w.lookupCurrent(), asm.Instructions{
		asm.JEq.Imm(asm.R0, 0, "exit"),
		// Live again, whichever thread executed.
		asm.StoreImm(asm.R0, 0, followedLive, asm.Word),
		asm.Mov.Imm(asm.R1, sigStop),
		asm.FnSendSignal.Call(),
		asm.JNE.Imm(asm.R0, 0, "exit"), // not stopped: do not report
		asm.LoadMapPtr(asm.R1, w.events.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTgid),
		asm.Mov.Imm(asm.R3, 8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	})
}

// exitProgram marks a followed process whose main thread exits
// (followedLeaderExited): raw tracepoint sched_process_exit. It does not
// forget it: a thread other than the main one that executes a program
// (a Go program's syscall.Exec, such as the go command switching to
// another toolchain, runs on any thread) makes the kernel end the main
// thread first; the exec program then follows the process on. The
// sweeper forgets processes that are gone, and the fork program a PID
// used again.
func (w *Watcher) exitProgram() asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.RSh.Imm(asm.R1, 32),
		asm.LSh.Imm(asm.R0, 32),
		asm.RSh.Imm(asm.R0, 32),
		asm.JNE.Reg(asm.R0, asm.R1, "exit"),
		asm.StoreMem(asm.RFP, fpTgid, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpValue, followedLeaderExited, asm.Word),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTgid),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpValue),
		asm.Mov.Imm(asm.R4, bpfExist), // only a followed one
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	}
}

// bpfExist is BPF_EXIST: update an element only if it exists.
const bpfExist = 2

// sweepInterval is how often the sweeper forgets followed processes that
// are gone.
const sweepInterval = time.Second

// sweep forgets, every sweepInterval until Close, the followed processes
// whose main thread exited (see exitProgram) and that are gone or zombies
// now, so that the map holds the processes that live.
func (w *Watcher) sweep() {
	defer w.wg.Done()
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.sweepOnce()
	}
}

func (w *Watcher) sweepOnce() {
	var (
		pid, value uint32
		gone       []uint32
	)
	it := w.followed.Iterate()
	for it.Next(&pid, &value) {
		if value == followedLeaderExited && !alive(int(pid)) {
			gone = append(gone, pid)
		}
	}
	if err := it.Err(); err != nil {
		w.log.Debug("iterate followed processes", "err", err)
	}
	for _, pid := range gone {
		// The process may have executed a program meanwhile (its value
		// is live again): check again, as late as possible.
		var v uint32
		if err := w.followed.Lookup(pid, &v); err != nil || v != followedLeaderExited || alive(int(pid)) {
			continue
		}
		if err := w.followed.Delete(pid); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			w.log.Debug("forget an exited process", "pid", pid, "err", err)
		}
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool { return !procfs.Exited(pid) }

func (w *Watcher) read() {
	defer w.wg.Done()
	defer close(w.execs)
	var rec ringbuf.Record
	for {
		if err := w.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			w.log.Warn("read exec ring buffer", "err", err)
			continue
		}
		if len(rec.RawSample) < 4 {
			w.log.Warn("skip short exec record", "bytes", len(rec.RawSample))
			continue
		}
		w.execs <- Exec{PID: int(binary.LittleEndian.Uint32(rec.RawSample))}
	}
}

// Execs delivers the followed processes that executed a program, stopped,
// until Close, then is closed.
func (w *Watcher) Execs() <-chan Exec { return w.execs }

// Follow follows process pid and the processes it forks from now on.
func (w *Watcher) Follow(pid int) error {
	if err := w.followed.Put(uint32(pid), uint32(1)); err != nil {
		return fmt.Errorf("follow process %d: %w", pid, err)
	}
	return nil
}

// Unfollow stops following process pid; the children it forked already
// stay followed.
func (w *Watcher) Unfollow(pid int) error {
	if err := w.followed.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unfollow process %d: %w", pid, err)
	}
	return nil
}

// Continue resumes a process the watcher stopped at exec.
func (w *Watcher) Continue(pid int) error {
	if err := unix.Kill(pid, unix.SIGCONT); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("continue process %d: %w", pid, err)
	}
	return nil
}

// Close detaches the programs, stops reading and closes Execs. Processes
// reported but not yet continued stay stopped: Continue them; those still
// queued are continued. Close
// does not return until the reader stopped; the caller must not block
// Execs' consumer on Close.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		for _, l := range w.links {
			l.Close()
		}
		w.links = nil
		close(w.stop)
		err = w.reader.Close()
		// The reader may be blocked sending: drain until it is done, and
		// let the processes drained go on.
		go func() {
			for e := range w.execs {
				w.Continue(e.PID)
			}
		}()
		w.wg.Wait()
		w.closeObjects()
	})
	return err
}

func (w *Watcher) closeObjects() {
	for _, l := range w.links {
		l.Close()
	}
	for _, p := range w.progs {
		p.Close()
	}
	for _, m := range []*ebpf.Map{w.followed, w.events} {
		if m != nil {
			m.Close()
		}
	}
}
