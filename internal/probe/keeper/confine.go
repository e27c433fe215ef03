//go:build linux

package keeper

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The keeper lives as long as reach and runs as reach's user, often root.
// It gets only what creating, holding and closing probe links needs:
//
//   - the capabilities of Caps, and no way to gain others
//     (no_new_privs, a bounding set of those alone);
//   - no environment but Env (Start);
//   - no descriptor but its standard streams (/dev/null and a pipe to
//     reach's standard error) and its socket: the ones reach inherited
//     are closed (closeInherited).

// More capability numbers from linux/capability.h.
const (
	capDACReadSearch = 2
	capSysPtrace     = 19
)

// Caps returns the capabilities the keeper keeps, each one tested by
// TestKeeperConfined:
//
//   - CAP_BPF and CAP_PERFMON create uprobe_multi links;
//   - CAP_DAC_READ_SEARCH lets the kernel resolve the path of an
//     executable in a directory that only its owner may search;
//   - CAP_SYS_PTRACE lets it resolve /proc/PID/exe, the path reach attach
//     names a process's executable by, for a process whose capabilities
//     the keeper's do not include (a process of root's, or another
//     user's);
//   - for classic uprobes, CAP_SYS_ADMIN, without which this kernel
//     refuses the perf_uprobe event (EACCES, even with CAP_PERFMON).
//
// A keeper started for uprobe_multi links cannot make classic ones: when
// the engine falls back to them later, attaching fails with a permission
// error that says so.
func Caps(classic bool) []int {
	caps := []int{unix.CAP_BPF, unix.CAP_PERFMON, capDACReadSearch, capSysPtrace}
	if classic {
		caps = append(caps, unix.CAP_SYS_ADMIN)
	}
	return caps
}

// startConfined starts cmd from an operating-system thread of its own that
// first gives up every capability but caps from its bounding,
// inheritable and ambient sets and, as root, sets no_new_privs: the
// program cmd runs then starts with no more, in every one of its threads.
// The thread is thrown away afterwards, so reach keeps its own.
//
// Without CAP_SETPCAP (reach run by a user with file capabilities) the
// bounding set stays, and the executable's file capabilities bound the
// keeper; no_new_privs is then not set, as it would void them.
func startConfined(cmd *exec.Cmd, caps []int) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		confineThread(caps)
		errc <- cmd.Start()
	}()
	return <-errc
}

// confineThread restricts the calling thread as startConfined says. It does
// what it can: each step only ever takes privileges away.
func confineThread(caps []int) {
	keep := CapMask(caps)
	last := lastCap()
	for c := 0; c <= last; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_LOWER, uintptr(c), 0, 0)
		unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0) // needs CAP_SETPCAP
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) == nil {
		data[0].Inheritable &= uint32(keep)
		data[1].Inheritable &= uint32(keep >> 32)
		unix.Capset(&hdr, &data[0])
	}
	if os.Geteuid() == 0 {
		unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}
}

func CapMask(caps []int) uint64 {
	m := uint64(0)
	for _, c := range caps {
		m |= 1 << c
	}
	return m
}

// lastCap returns the highest capability number of the running kernel.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 63
	}
	return n
}

// closeInherited closes, in the keeper, every descriptor other than its
// standard streams and its socket that it inherited from reach: those
// reach itself inherited without close-on-exec. Descriptors the Go runtime
// and this program opened are all close-on-exec, and stay.
func closeInherited() {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd <= socketFD {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}
