//go:build linux

package keeper

import (
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
// GrowFDTable grows it once, when the holder of the links starts.
//
// The first uprobe registration after a quiet spell: registering takes
// the write side of the kernel's dup_mmap_sem, a per-CPU semaphore, and
// its first writer waits for a grace period (rcu_sync_enter); writers that
// follow within about a grace period do not. Warm registers a probe that
// can never fire while the caller analyses the binary, so that the arming
// that follows finds the semaphore ready.

// CreateLinks attaches prog to the sites at offsets, with their cookies, in
// ex, for process pid (or every process when 0): one uprobe_multi link when
// multi is set, else a classic uprobe per site. A classic attach that
// fails closes the links made and returns the index of the failing site;
// site is -1 otherwise.
func CreateLinks(ex *link.Executable, prog *ebpf.Program, multi bool, pid int, offsets, cookies []uint64) (links []link.Link, site int, err error) {
	if multi {
		l, err := ex.UprobeMulti(nil, prog, &link.UprobeMultiOptions{Addresses: offsets, Cookies: cookies, PID: uint32(pid)})
		if err != nil {
			return nil, -1, err
		}
		return []link.Link{l}, -1, nil
	}
	links = make([]link.Link, 0, len(offsets))
	for i, off := range offsets {
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: off, Cookie: cookies[i], PID: pid})
		if err != nil {
			CloseLinks(links)
			return nil, i, err
		}
		links = append(links, l)
	}
	return links, -1, nil
}

func CloseLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
}

// FDTableSize is the number of descriptors the table is grown to hold.
const FDTableSize = 16384

// GrowFDTable grows this process's descriptor table to hold about n
// descriptors, within RLIMIT_NOFILE; it is best effort.
func GrowFDTable(n int) {
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

// WarmLink registers a uprobe_multi link of prog in the executable at
// path that no process can hit: at the file's last byte, which no
// executable mapping holds, filtered to this process. The caller closes
// it; closing waits for grace periods of its own.
func WarmLink(prog *ebpf.Program, path string) (link.Link, error) {
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
