// Package bpfenv holds what the probe engine (package probe) and the exec
// watcher (package execwatch) share about the eBPF environment they run
// in: the check of the process's privileges, the size of a BPF ring
// buffer, and the errors that say what is missing. Each of them checks
// the kernel features it needs itself.
package bpfenv

import "errors"

// ErrNotSupported reports a platform or kernel that lacks a feature
// reach's eBPF programs need; the error names the feature.
var ErrNotSupported = errors.New("not supported")

// ErrPermission reports missing privileges; the error names them.
var ErrPermission = errors.New("permission denied")
