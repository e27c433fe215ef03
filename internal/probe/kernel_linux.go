package probe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

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
