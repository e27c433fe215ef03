//go:build !plan9

package procfs

import (
	"errors"
	"syscall"
)

// noProcess reports whether err says that the process does not exist.
func noProcess(err error) bool { return errors.Is(err, syscall.ESRCH) }
