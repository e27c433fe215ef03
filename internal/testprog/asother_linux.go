package testprog

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
)

// AsOther runs fn as user and group OtherUID, with no capabilities, on an
// operating-system thread of its own that is thrown away afterwards (the
// raw setresuid changes only the calling thread, not the test process),
// and returns fn's error. fn must not start goroutines that do the work.
// It needs root: see RequireRoot.
func AsOther(tb testing.TB, fn func() error) error {
	tb.Helper()
	RequireRoot(tb)
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, OtherUID, OtherUID, OtherUID); e != 0 {
			errc <- fmt.Errorf("setresgid %d: %w", OtherUID, e)
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, OtherUID, OtherUID, OtherUID); e != 0 {
			errc <- fmt.Errorf("setresuid %d: %w", OtherUID, e)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
