package probe

import "log/slog"

// Exec is a followed process that executed a new program. The kernel
// stopped it (SIGSTOP) before its first instruction: arm its probes, then
// let it go on with ExecWatcher.Continue.
type Exec struct {
	PID int
}

// ExecOptions configure an ExecWatcher.
type ExecOptions struct {
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
