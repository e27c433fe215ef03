package probe

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Two waits of the kernel, each an RCU grace period (10-15 ms on the
// machines measured), used to dominate arming. Neither depends on the
// probes, so both are paid ahead of time, off the arming path.
//
// The descriptor table: the kernel grows a process's table in powers of
// two as descriptors are opened, and in a multi-threaded process each
// growth waits for a grace period (expand_fdtable). Each link is a
// descriptor, so arming 1,000 symbols waited at the 256th and the 512th.
// growFDTable grows it once, when the holder of the links starts.
//
// The first uprobe registration after a quiet spell: registering takes
// the write side of the kernel's dup_mmap_sem, a per-CPU semaphore, and
// its first writer waits for a grace period (rcu_sync_enter); writers that
// follow within about a grace period do not. Warm registers a probe that
// can never fire while the caller analyses the binary, so that the arming
// that follows finds the semaphore ready.

// fdTableSize is the number of descriptors the table is grown to hold.
const fdTableSize = 16384

// growFDTable grows this process's descriptor table to hold about n
// descriptors, within RLIMIT_NOFILE; it is best effort.
func growFDTable(n int) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	top := min(uint64(n), lim.Cur) - 1
	if top < 64 {
		return
	}
	// The lowest free descriptor at or above top: the table grows to
	// hold it, and keeps its size after the close.
	fd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, int(top))
	if err != nil {
		return
	}
	unix.Close(fd)
}

// warmLink registers a uprobe_multi link of prog in the executable at
// path that no process can hit: at the file's last byte, which no
// executable mapping holds, filtered to this process. The caller closes
// it; closing waits for grace periods of its own.
func warmLink(prog *ebpf.Program, path string) (link.Link, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() < 1 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	return ex.UprobeMulti(nil, prog, &link.UprobeMultiOptions{
		Addresses: []uint64{uint64(fi.Size() - 1)},
		PID:       uint32(os.Getpid()),
	})
}

// Warm readies the kernel for arming probes in the executable at path
// soon, such as once its analysis is done; it returns at once and does the
// work in the background. It does nothing with classic uprobes.
func (e *engine) Warm(ctx context.Context, path string) {
	var multi *ebpf.Program
	leave, err := e.enter(func() error {
		if multi = e.multi; multi == nil {
			return errClassic
		}
		return nil
	})
	if err != nil {
		return // closed, or classic uprobes: nothing to warm
	}
	go func() {
		defer leave()
		if err := e.holder.warm(multi, path); err != nil {
			e.log.DebugContext(ctx, "warm the kernel for arming", "path", path, "err", err)
		}
	}()
}

// errClassic refuses to warm for classic uprobes.
var errClassic = errors.New("classic uprobes")

// warm has the keeper register a warmLink, which it keeps until it next
// closes links.
func (k *keeper) warm(prog *ebpf.Program, path string) error {
	if err := k.register(prog, progMulti); err != nil {
		return err
	}
	_, err := k.call(keeperRequest{Op: opWarm, Prog: progMulti, Attach: []keeperAttach{{Path: path}}})
	return err
}
