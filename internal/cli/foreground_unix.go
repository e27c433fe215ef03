//go:build unix

package cli

import "golang.org/x/sys/unix"

// terminalForeground reports whether reach runs in the foreground process
// group of the terminal on its standard input, where a typed ^C signals
// every process of the group, the program included.
func terminalForeground() bool {
	fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	own, err := unix.Getpgid(0) // Getpgrp differs between systems
	return err == nil && fg == own
}
