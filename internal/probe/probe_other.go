//go:build !linux

package probe

import (
	"context"
	"fmt"
	"runtime"
)

func newEngine(ctx context.Context, opts Options) (Engine, error) {
	return nil, fmt.Errorf("%w: eBPF probes need Linux, not %s", ErrNotSupported, runtime.GOOS)
}
