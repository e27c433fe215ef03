//go:build !plan9

package observe

import (
	"os/exec"
	"syscall"
)

// signalled returns the number of the signal that ended a program, if one
// did.
func signalled(err *exec.ExitError) (int, bool) {
	if ws, ok := err.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal()), true
	}
	return 0, false
}
