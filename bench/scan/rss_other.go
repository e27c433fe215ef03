//go:build !linux

package main

import "os"

// maxRSS returns the peak resident memory of the ended process ps, in
// bytes, or 0 where this benchmark does not read it (only Linux).
func maxRSS(ps *os.ProcessState) int64 { return 0 }
