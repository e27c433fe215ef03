//go:build !linux

package execwatch

import (
	"context"
	"fmt"
	"runtime"

	"github.com/reach-sca/reach/internal/probe/bpfenv"
)

// Watcher needs Linux.
type Watcher struct{}

// New fails with bpfenv.ErrNotSupported outside Linux.
func New(ctx context.Context, opts Options) (*Watcher, error) {
	return nil, fmt.Errorf("%w: following processes needs Linux, not %s", bpfenv.ErrNotSupported, runtime.GOOS)
}

func (w *Watcher) Execs() <-chan Exec     { return nil }
func (w *Watcher) Follow(pid int) error   { return bpfenv.ErrNotSupported }
func (w *Watcher) Unfollow(pid int) error { return bpfenv.ErrNotSupported }
func (w *Watcher) Continue(pid int) error { return bpfenv.ErrNotSupported }
func (w *Watcher) Close() error           { return nil }
