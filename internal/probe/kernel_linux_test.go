package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
}
