//go:build !(linux || darwin || windows || freebsd)

package cli

import (
	"context"
	"fmt"
	"runtime"
)

const serverArgs = "[flags] | enrol-token [flags] | admin-token [flags]"

// runServer: reach server stores its data with modernc.org/sqlite, which
// does not build for this system.
func runServer(ctx context.Context, e *env, args []string) error {
	return fmt.Errorf("server: reach server is not available on %s: run it on Linux, macOS, Windows or FreeBSD", runtime.GOOS)
}
