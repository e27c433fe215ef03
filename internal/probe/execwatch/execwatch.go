// Package execwatch stops followed processes when they execute a program,
// before the program's first instruction, and reports them, so that a
// caller (the observe session) can arm probes in the new program before it
// runs any code. A process is followed when the caller names it or when a
// followed process forks it.
//
// It needs Linux, the privileges of package probe's engine (see bpfenv),
// and a kernel with BTF (/sys/kernel/btf/vmlinux), BPF ring buffers and
// bpf_send_signal. It learns one offset in the kernel's task_struct from
// the BTF and can keep it across runs (Options.CacheDir).
package execwatch

import "log/slog"

// Exec is a followed process that executed a new program. The kernel
// stopped it (SIGSTOP) before its first instruction: arm its probes, then
// let it go on with Watcher.Continue.
type Exec struct {
	PID int
}

// Options configure a Watcher.
type Options struct {
	// Logger receives the watcher's logs; nil discards them.
	Logger *slog.Logger
	// MaxFollowed is the number of processes that can be followed at
	// once; 0 means 65536.
	MaxFollowed int
	// CacheDir, when set, is a directory where the watcher keeps what it
	// learns of the running kernel (an offset in task_struct), which
	// spares it reading the kernel's BTF again until the next reboot.
	CacheDir string
}
