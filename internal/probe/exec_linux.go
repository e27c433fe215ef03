package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// ExecWatcher stops followed processes when they execute a program, so
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
type ExecWatcher struct {
	log      *slog.Logger
	followed *ebpf.Map
	events   *ebpf.Map
	progs    []*ebpf.Program
	links    []link.Link
	reader   *ringbuf.Reader
	execs    chan Exec
	wg       sync.WaitGroup
	once     sync.Once
}

// NewExecWatcher loads and attaches the watcher's programs. It fails with
// ErrPermission or ErrNotSupported, naming what is missing.
func NewExecWatcher(ctx context.Context, opts ExecOptions) (_ *ExecWatcher, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxFollowed <= 0 {
		opts.MaxFollowed = 1 << 16
	}
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the locked memory limit for BPF maps: %w", err)
	}
	tgidOff, err := taskTgidOffset(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	w := &ExecWatcher{
		log:   opts.Logger.With("component", "exec-watcher"),
		execs: make(chan Exec, 256),
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
		return nil, permissionHint(fmt.Errorf("create followed-process map: %w", err))
	}
	w.events, err = ebpf.NewMap(&ebpf.MapSpec{Name: "reach_execs", Type: ebpf.RingBuf, MaxEntries: uint32(ringSize(64 << 10))})
	if err != nil {
		return nil, permissionHint(fmt.Errorf("create exec ring buffer: %w", err))
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
			return nil, permissionHint(fmt.Errorf("load the %s program: %w", tp.name, err))
		}
		w.progs = append(w.progs, prog)
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: prog})
		if err != nil {
			return nil, permissionHint(fmt.Errorf("attach to tracepoint %s: %w", tp.name, err))
		}
		w.links = append(w.links, l)
	}
	w.reader, err = ringbuf.NewReader(w.events)
	if err != nil {
		return nil, fmt.Errorf("open exec ring buffer reader: %w", err)
	}
	w.wg.Add(1)
	go w.read()
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
// sched_process_fork(parent, child).
func (w *ExecWatcher) forkProgram(tgidOff uint32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, fpTgid, asm.R0, asm.Word),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTgid),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		// child->tgid
		asm.LoadMem(asm.R3, asm.R6, 8, asm.DWord),
		asm.Add.Imm(asm.R3, int32(tgidOff)),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, fpChild),
		asm.Mov.Imm(asm.R2, 4),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "exit"),
		asm.StoreImm(asm.RFP, fpValue, 1, asm.Word),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpChild),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpValue),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	}
}

// execProgram stops a followed process that executed a program and reports
// it: raw tracepoint sched_process_exec, which runs in the process.
func (w *ExecWatcher) execProgram() asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, fpTgid, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTgid),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
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
	}
}

// exitProgram forgets a followed process when its main thread exits: raw
// tracepoint sched_process_exit.
func (w *ExecWatcher) exitProgram() asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.RSh.Imm(asm.R1, 32),
		asm.LSh.Imm(asm.R0, 32),
		asm.RSh.Imm(asm.R0, 32),
		asm.JNE.Reg(asm.R0, asm.R1, "exit"),
		asm.StoreMem(asm.RFP, fpTgid, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, w.followed.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpTgid),
		asm.FnMapDeleteElem.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	}
}

func (w *ExecWatcher) read() {
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
func (w *ExecWatcher) Execs() <-chan Exec { return w.execs }

// Follow follows process pid and the processes it forks from now on.
func (w *ExecWatcher) Follow(pid int) error {
	if err := w.followed.Put(uint32(pid), uint32(1)); err != nil {
		return fmt.Errorf("follow process %d: %w", pid, err)
	}
	return nil
}

// Unfollow stops following process pid; the children it forked already
// stay followed.
func (w *ExecWatcher) Unfollow(pid int) error {
	if err := w.followed.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unfollow process %d: %w", pid, err)
	}
	return nil
}

// Continue resumes a process the watcher stopped at exec.
func (w *ExecWatcher) Continue(pid int) error {
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
func (w *ExecWatcher) Close() error {
	var err error
	w.once.Do(func() {
		for _, l := range w.links {
			l.Close()
		}
		w.links = nil
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

func (w *ExecWatcher) closeObjects() {
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
