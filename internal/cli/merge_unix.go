//go:build unix

package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// openMerge opens the report file name for mergeReport, creating it: not
// through a symbolic link, and never blocking on a FIFO.
func openMerge(name string) (*os.File, error) {
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
