//go:build !unix

package cli

import (
	"fmt"
	"io/fs"
	"os"
)

// openMerge opens the report file name for mergeReport, creating it; a
// symbolic link is refused.
func openMerge(name string) (*os.File, error) {
	if fi, err := os.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("a symbolic link")
	}
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
}
