package cli

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockMerge waits for an exclusive lock on f, which closing f releases.
func lockMerge(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, new(windows.Overlapped))
}
