//go:build unix

package binfo

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestSparsePclntab opens a 1 GiB sparse file, a few megabytes on disk,
// whose pclntab claims 20 million functions: believing it took 2.4 GB.
// Open must refuse it as corrupt, promptly and without allocating the
// claimed tables.
func TestSparsePclntab(t *testing.T) {
	good := testprog.Build(t, filepath.Join("testdata", "frames"), testprog.Stripped)
	path := testprog.SparsePclntab(t, good, 1<<30, 20_000_000)
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes, %d stored", path, st.Size, st.Blocks*512)
	if st.Blocks*512 > 64<<20 {
		testprog.Skip(t, fmt.Sprintf("the file system stored %d bytes: it does not keep files sparse", st.Blocks*512))
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := Open(path)
	runtime.ReadMemStats(&after)
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "sparse") {
		t.Errorf("Open: %v, want ErrCorrupt naming the file and the sparse holes", err)
	}
	// The bound: reading is refused before the section is; what is
	// allocated is the ELF headers and the build information.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("Open allocated %d MiB, want under 16 MiB", alloc>>20)
	}
	t.Log(err)
}
