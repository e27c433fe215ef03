//go:build unix

package testprog

import (
	"os/exec"
	"syscall"
)

// runAs makes cmd run as c's user and group, with no supplementary groups.
func runAs(cmd *exec.Cmd, c credential) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)},
	}
}
