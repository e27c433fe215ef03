package probe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Capability numbers from linux/capability.h.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// checkPrivileges reports the capabilities the engine needs and the process
// lacks: CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN.
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

// checkKernel reports the kernel features the engine cannot do without.
func checkKernel() error {
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return kernelErr("BPF ring buffers (Linux 5.8)", err)
	}
	if err := features.HaveProgramHelper(ebpf.Kprobe, asm.FnGetAttachCookie); err != nil {
		return kernelErr("BPF cookies for uprobes (Linux 5.15)", err)
	}
	return nil
}

func kernelErr(what string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w: the kernel lacks %s: upgrade the kernel", ErrNotSupported, what)
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: probing for %s: %v (run as root)", ErrPermission, what, err)
	}
	return fmt.Errorf("probe kernel for %s: %w", what, err)
}

// multiPIDFilterWorks reports whether uprobe_multi's PID filter covers a
// whole process. Before Linux 6.10 (commit 46ba0e49b642, "bpf: fix
// multi-uprobe PID filtering logic") it only let the one thread whose ID
// was given through, which would miss every hit on another thread.
func multiPIDFilterWorks() (bool, string) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, "unknown"
	}
	rel := unix.ByteSliceToString(u.Release[:])
	major, minor, ok := kernelVersion(rel)
	return ok && (major > 6 || major == 6 && minor >= 10), rel
}

func kernelVersion(rel string) (major, minor int, ok bool) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	minor, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return major, minor, true
}
