//go:build unix

package testprog

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Mkfifo creates a FIFO at path, such as one planted where reach expects
// a regular file.
func Mkfifo(tb testing.TB, path string) {
	tb.Helper()
	if err := unix.Mkfifo(path, 0o644); err != nil {
		tb.Fatal(err)
	}
}
