//go:build !unix

package testprog

import "os/exec"

// runAs is never called off Unix, where the process is never root.
func runAs(cmd *exec.Cmd, c credential) {}
