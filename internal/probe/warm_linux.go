package probe

import (
	"context"
	"errors"

	"github.com/cilium/ebpf"
)

// Warm readies the kernel for arming probes in the executable at path
// soon, such as once its analysis is done; it returns at once and does the
// work in the background. It does nothing with classic uprobes.
func (e *engine) Warm(ctx context.Context, path string) {
	var multi *ebpf.Program
	leave, err := e.enter(func() error {
		if multi = e.multi; multi == nil {
			return errClassic
		}
		return nil
	})
	if err != nil {
		return // closed, or classic uprobes: nothing to warm
	}
	go func() {
		defer leave()
		if err := e.holder.warm(multi, path); err != nil {
			e.log.DebugContext(ctx, "warm the kernel for arming", "path", path, "err", err)
		}
	}()
}

// errClassic refuses to warm for classic uprobes.
var errClassic = errors.New("classic uprobes")
