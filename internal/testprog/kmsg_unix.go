//go:build unix

package testprog

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelLeaks returns the kernel log's "leaking uprobe" lines, of tasks
// named comm or, with comm "", of all: the kernel could not remove a
// breakpoint when a probe went away, and left it in the process. The log
// is read from /dev/kmsg (as root), whatever dmesg's restrictions.
func KernelLeaks(comm string) ([]string, error) {
	// Raw system calls: os.File would wait in the poller for more.
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read the kernel log: %w", err)
	}
	defer unix.Close(fd)
	var lines []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) || (err == nil && n == 0) {
			return lines, nil
		}
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.EINTR) {
			continue // overwritten while read
		}
		if err != nil {
			return nil, fmt.Errorf("read the kernel log: %w", err)
		}
		l := string(buf[:n])
		if strings.Contains(l, "leaking uprobe") && (comm == "" || strings.Contains(l, " "+comm+":")) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
}
