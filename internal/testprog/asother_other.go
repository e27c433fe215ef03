//go:build !linux

package testprog

import "testing"

// AsOther runs fn as user OtherUID on Linux; elsewhere, where one thread
// cannot change its user alone, it skips the test.
func AsOther(tb testing.TB, fn func() error) error {
	tb.Helper()
	tb.Skip("running as another user needs Linux (setresuid on one thread)")
	return nil
}
