package cli

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOwnProcessGroup: terminalForeground reads this process's group as
// Getpgid(0), which builds on every Unix, where Getpgrp's signature
// differs between systems; it must be the group Getpgrp names.
func TestOwnProcessGroup(t *testing.T) {
	own, err := unix.Getpgid(0)
	if err != nil {
		t.Fatal(err)
	}
	if want := syscall.Getpgrp(); own != want {
		t.Errorf("Getpgid(0) = %d, Getpgrp() = %d", own, want)
	}
}
