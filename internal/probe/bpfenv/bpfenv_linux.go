package bpfenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Capability numbers from linux/capability.h.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// Prepare readies the process to load eBPF programs: it fails with
// ErrPermission, naming the capabilities the process lacks (CAP_BPF and
// CAP_PERFMON, or CAP_SYS_ADMIN), and otherwise lifts the locked-memory
// limit that BPF maps count against on kernels before 5.11.
func Prepare() error {
	if err := checkPrivileges(); err != nil {
		return err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise the locked memory limit for BPF maps: %w", err)
	}
	return nil
}

// PermissionHint turns err, an error of the kernel that loading or
// attaching a BPF object returned, into ErrPermission with a hint when the
// kernel said EPERM.
func PermissionHint(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: %v (run as root, or with CAP_BPF and CAP_PERFMON)", ErrPermission, err)
	}
	return err
}

// RingSize returns the size of a BPF ring buffer that holds at least n
// bytes: the kernel wants a power of two pages.
func RingSize(n int) int {
	size := unix.Getpagesize()
	for size < n {
		size *= 2
	}
	return size
}

// checkPrivileges reports the capabilities reach's eBPF programs need and
// the process lacks: CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN.
func checkPrivileges() error {
	// The calling thread's capabilities, not the main thread's: a test
	// helper that drops a locked thread's privileges (testprog.AsOther)
	// may leave the main thread wedged as another user, while the others
	// keep theirs.
	// Locked, so that the thread the file names is this one while it is
	// read (a thread may exit once its goroutine moves on).
	runtime.LockOSThread()
	b, err := os.ReadFile("/proc/thread-self/status")
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	eff, err := parseCapEff(b)
	if err != nil {
		return err
	}
	if err := missingCaps(eff); err != nil {
		return err
	}
	if err := readKernelVersion(); err != nil {
		return fmt.Errorf("read the kernel's version: %w", err)
	}
	return nil
}

// readKernelVersion has cilium/ebpf read the kernel's version, which it
// keeps for the life of the process (the first error too) and needs to
// load any kprobe-type program, uprobes included. It reads the version
// from the vDSO through /proc/self/mem, which a process started with file
// capabilities cannot open as an ordinary user: such a process is not
// dumpable, so its /proc/self is root's. The process is made dumpable
// for that one read: other processes of the user still cannot trace it or
// read its memory, as that also demands every capability it holds.
func readKernelVersion() error {
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err == nil && d != 1 {
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err == nil {
			defer unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
		}
	}
	_, err := features.LinuxVersionCode()
	return err
}

func parseCapEff(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("parse CapEff %q in /proc/thread-self/status: %w", v, err)
		}
		return eff, nil
	}
	return 0, errors.New("no CapEff line in /proc/thread-self/status")
}

func missingCaps(eff uint64) error {
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) {
		return nil
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	return fmt.Errorf("%w: missing %s (run as root, or grant them: setcap cap_bpf,cap_perfmon+ep on the reach binary)",
		ErrPermission, strings.Join(missing, " and "))
}
