//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where there is no parent-death signal: the
// servers are stopped when the benchmark returns or is interrupted.
func dieWithParent(cmd *exec.Cmd) {}
