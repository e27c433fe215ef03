//go:build !linux

package probe

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
)

// Exec is a followed process that executed a new program.
type Exec struct {
	PID int
}

// ExecOptions configure an ExecWatcher.
type ExecOptions struct {
	Logger      *slog.Logger
	MaxFollowed int
	CacheDir    string
}

// ExecWatcher needs Linux.
type ExecWatcher struct{}

// NewExecWatcher fails with ErrNotSupported outside Linux.
func NewExecWatcher(ctx context.Context, opts ExecOptions) (*ExecWatcher, error) {
	return nil, fmt.Errorf("%w: following processes needs Linux, not %s", ErrNotSupported, runtime.GOOS)
}

func (w *ExecWatcher) Execs() <-chan Exec     { return nil }
func (w *ExecWatcher) Follow(pid int) error   { return ErrNotSupported }
func (w *ExecWatcher) Unfollow(pid int) error { return ErrNotSupported }
func (w *ExecWatcher) Continue(pid int) error { return ErrNotSupported }
func (w *ExecWatcher) Close() error           { return nil }
