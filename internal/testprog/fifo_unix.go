//go:build unix

package testprog

import (
	"syscall"
	"testing"
)

// Mkfifo creates a FIFO at path, such as one planted where reach expects
// a regular file.
func Mkfifo(tb testing.TB, path string) {
	tb.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		tb.Fatal(err)
	}
}
