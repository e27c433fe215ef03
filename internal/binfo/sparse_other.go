//go:build !linux

package binfo

import "os"

// storedBytes reports that the file system cannot tell holes from data.
func storedBytes(f *os.File, off, n int64) (stored int64, ok bool) { return 0, false }
