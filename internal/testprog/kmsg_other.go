//go:build !unix

package testprog

import (
	"errors"
	"runtime"
)

// KernelLeaks reads the kernel log on Linux; there is none to read here.
func KernelLeaks(comm string) ([]string, error) {
	return nil, errors.New("no kernel log to read on " + runtime.GOOS)
}
