//go:build !plan9

package cli

import (
	"errors"
	"syscall"
)

// errnoMessage says what the system's error number in err, a failure to
// start a program, means for the user.
func errnoMessage(err error) (string, bool) {
	if errors.Is(err, syscall.ENOEXEC) {
		return "exec format error: not a program this machine can run (built for another architecture or system?)", true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "", false
	}
	return errno.Error(), true
}
