//go:build !unix

package testprog

import "testing"

// Mkfifo creates a FIFO at path on Unix systems; elsewhere it skips the
// test.
func Mkfifo(tb testing.TB, path string) {
	tb.Helper()
	tb.Skip("FIFOs need a Unix system")
}
