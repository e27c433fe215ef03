package binfo

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// storedBytes returns how many of the n bytes at off in f are stored on
// disk rather than in holes, using SEEK_DATA and SEEK_HOLE. ok is false
// when the file system cannot tell. It stops counting once half of n is
// found stored, which is all readers ask.
func storedBytes(f *os.File, off, n int64) (stored int64, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	end := off + n
	ok = true
	err = rc.Control(func(fd uintptr) {
		for pos := off; pos < end && stored < n/2+1; {
			data, err := unix.Seek(int(fd), pos, unix.SEEK_DATA)
			if errors.Is(err, unix.ENXIO) { // only a hole up to the end
				return
			}
			if err != nil {
				ok = false
				return
			}
			if data >= end {
				return
			}
			hole, err := unix.Seek(int(fd), data, unix.SEEK_HOLE)
			if err != nil {
				ok = false
				return
			}
			stored += min(hole, end) - data
			pos = hole
		}
	})
	return stored, ok && err == nil
}
