//go:build unix

package safefile

import (
	"os"
	"syscall"
)

// Owner returns the user ID that owns the file fi describes, and false
// when fi does not say.
func Owner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// Links returns the number of names (hard links) of the file fi
// describes, and false when fi does not say.
func Links(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
