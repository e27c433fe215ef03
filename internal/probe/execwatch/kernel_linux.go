package execwatch

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/reach-sca/reach/internal/probe/bpfenv"
	"github.com/reach-sca/reach/internal/safefile"
)

// taskTgidOffset returns the offset of tgid in the kernel's task_struct.
//
// It comes from the kernel's BTF, whose parse costs about 30 ms of CPU:
// most of what starting to follow programs costs. With cacheDir set, the
// offset is kept in a file there, valid for the running kernel until it
// reboots (its boot ID and release name it): a kernel's types cannot
// change without one.
func taskTgidOffset(cacheDir string) (uint32, error) {
	key := kernelKey()
	file := ""
	if cacheDir != "" && key != "" {
		file = filepath.Join(cacheDir, "task-tgid-offset")
		if off, ok := readOffset(file, key); ok {
			return off, nil
		}
	}
	off, err := btfTaskTgidOffset()
	if err != nil {
		return 0, err
	}
	if file != "" {
		writeOffset(file, key, off) // best effort: a cache
	}
	return off, nil
}

// kernelKey names the running kernel until it reboots: its boot ID and
// release, or "" when they cannot be read.
func kernelKey() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	b, r := strings.TrimSpace(string(boot)), strings.TrimSpace(string(rel))
	if b == "" || r == "" || strings.ContainsAny(b+r, " \n") {
		return ""
	}
	return b + " " + r
}

// maxTaskOffset bounds a believable field offset in task_struct.
const maxTaskOffset = 1 << 16

// readOffset reads a cache file of the line "KEY OFFSET" and returns the
// offset when the key is key.
func readOffset(file, key string) (uint32, bool) {
	if err := safefile.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return 0, false // another user's cache could lie
	}
	f, err := safefile.Open(file) // no wait on a FIFO planted there
	if err != nil {
		return 0, false
	}
	data, err := io.ReadAll(io.LimitReader(f, 513))
	f.Close()
	if err != nil || len(data) > 512 {
		return 0, false
	}
	v, ok := strings.CutPrefix(strings.TrimSuffix(string(data), "\n"), key+" ")
	if !ok {
		return 0, false
	}
	off, err := strconv.ParseUint(v, 10, 32)
	if err != nil || off == 0 || off%4 != 0 || off >= maxTaskOffset {
		return 0, false
	}
	return uint32(off), true
}

// writeOffset writes the cache file whole or not at all.
func writeOffset(file, key string, off uint32) error {
	if err := safefile.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return safefile.ReplaceFile(file, 0o644, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s %d\n", key, off)
		return err
	})
}

// btfTaskTgidOffset reads the offset of tgid in task_struct from the
// kernel's BTF.
func btfTaskTgidOffset() (uint32, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, fmt.Errorf("read the kernel's BTF (/sys/kernel/btf/vmlinux), needed to follow child processes: %v: %w", err, bpfenv.ErrNotSupported)
	}
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return 0, fmt.Errorf("find task_struct in the kernel's BTF: %v: %w", err, bpfenv.ErrNotSupported)
	}
	for _, m := range task.Members {
		if m.Name == "tgid" {
			if off := m.Offset.Bytes(); off < maxTaskOffset {
				return off, nil
			}
		}
	}
	return 0, fmt.Errorf("task_struct has no tgid in the kernel's BTF: %w", bpfenv.ErrNotSupported)
}
