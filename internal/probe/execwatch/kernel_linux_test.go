package execwatch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

func TestTaskTgidOffsetCache(t *testing.T) {
	want, err := btfTaskTgidOffset()
	if err != nil {
		t.Fatal(err)
	}
	key := kernelKey()
	if key == "" {
		t.Fatal("no boot ID or release under /proc/sys/kernel")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "task-tgid-offset")

	// No cache: from the BTF, and the cache is written.
	if got, err := taskTgidOffset(dir); err != nil || got != want {
		t.Fatalf("taskTgidOffset without a cache = %d, %v; want %d", got, err, want)
	}
	if off, ok := readOffset(file, key); !ok || off != want {
		t.Fatalf("cache after the first call holds %d, %v; want %d", off, ok, want)
	}

	// A cache of this kernel is used as it is: plant another believable
	// offset to tell it from the BTF's.
	planted := want + 8
	if err := writeOffset(file, key, planted); err != nil {
		t.Fatal(err)
	}
	if got, _ := taskTgidOffset(dir); got != planted {
		t.Errorf("taskTgidOffset with this kernel's cache = %d, want the cached %d", got, planted)
	}

	// Another boot's, or a damaged, cache is not: the BTF's offset wins
	// and replaces it.
	for _, content := range []string{
		"00000000-0000-0000-0000-000000000000 " + strings.SplitN(key, " ", 2)[1] + " 8\n",
		key + " 7\n",       // not a multiple of 4
		key + " 0\n",       // not believable
		key + " 1048576\n", // too far
		key + "\n",
		"",
		strings.Repeat("x", 1000),
	} {
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := taskTgidOffset(dir); err != nil || got != want {
			t.Errorf("taskTgidOffset with cache %.60q = %d, %v; want the BTF's %d", content, got, err, want)
		}
		if off, ok := readOffset(file, key); !ok || off != want {
			t.Errorf("cache %.60q was not replaced: holds %d, %v", content, off, ok)
		}
	}

	// An unusable cache directory is no error: the cache is best effort.
	if got, err := taskTgidOffset(filepath.Join(file, "not-a-dir")); err != nil || got != want {
		t.Errorf("taskTgidOffset with an unusable cache directory = %d, %v; want %d", got, err, want)
	}

	// Another user's cache (sudo kept their XDG_CACHE_HOME) is neither
	// believed nor written: its planted offset is ignored, and its link
	// to a directory of root's is not written through.
	other := testprog.SharedDir(t, testprog.OtherUID, 0o755)
	victimDir := t.TempDir()
	if err := testprog.AsOther(t, func() error {
		if err := os.WriteFile(filepath.Join(other, "task-tgid-offset"), []byte(fmt.Sprintf("%s %d\n", key, planted)), 0o644); err != nil {
			return err
		}
		return os.Symlink(victimDir, filepath.Join(other, "link"))
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := taskTgidOffset(other); err != nil || got != want {
		t.Errorf("taskTgidOffset with another user's cache = %d, %v; want the BTF's %d, not the planted %d", got, err, want, planted)
	}
	if got, err := taskTgidOffset(filepath.Join(other, "link")); err != nil || got != want {
		t.Errorf("taskTgidOffset through another user's link = %d, %v; want %d", got, err, want)
	}
	if ents, _ := os.ReadDir(victimDir); len(ents) != 0 {
		t.Errorf("cache written through another user's link: %v", ents)
	}
}
