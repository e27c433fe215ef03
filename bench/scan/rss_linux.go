package main

import (
	"os"
	"syscall"
)

// maxRSS returns the peak resident memory of the ended process ps, in
// bytes: Linux counts ru_maxrss in KiB.
func maxRSS(ps *os.ProcessState) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Maxrss * 1024
}
