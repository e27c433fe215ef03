//go:build !linux

package probe

import (
	"context"
	"fmt"
	"runtime"
)

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
