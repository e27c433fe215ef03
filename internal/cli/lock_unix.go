//go:build unix && !aix

package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockMerge waits for an exclusive lock on f, which closing f releases.
func lockMerge(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX)
}
