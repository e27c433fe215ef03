package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send cmd SIGTERM when this process ends,
// however it ends: a server left running would load the shared machine.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
