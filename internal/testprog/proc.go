package testprog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CodeBytes reads the bytes at the given file offsets of exe as mapped in
// process pid, through /proc/PID/mem.
func CodeBytes(pid int, exe string, offs []uint64) ([]byte, error) {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		return nil, err
	}
	type mapping struct{ lo, hi, off uint64 }
	var ms []mapping
	for _, l := range strings.Split(string(maps), "\n") {
		var m mapping
		var perms, dev, path string
		var inode int
		if n, _ := fmt.Sscanf(l, "%x-%x %s %x %s %d %s", &m.lo, &m.hi, &perms, &m.off, &dev, &inode, &path); n < 7 || path != exe {
			continue
		}
		ms = append(ms, m)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	out := make([]byte, len(offs))
	for i, off := range offs {
		found := false
		for _, m := range ms {
			if off < m.off || off >= m.off+m.hi-m.lo {
				continue
			}
			if _, err := mem.ReadAt(out[i:i+1], int64(m.lo+off-m.off)); err != nil {
				return nil, fmt.Errorf("read process %d at file offset %#x: %w", pid, off, err)
			}
			found = true
			break
		}
		if !found {
			return nil, fmt.Errorf("file offset %#x of %s not mapped in process %d", off, exe, pid)
		}
	}
	return out, nil
}

// CodeByte is the byte expected at a file offset of an executable, as
// mapped in a process; Name, when set, names it in errors (such as the
// probe site it is).
type CodeByte struct {
	Off  uint64
	Want byte
	Name string
}

// WaitCodeBytes waits up to limit for each of bytes to hold its Want in
// process pid, polling through /proc/PID/mem (see CodeBytes), such as for
// probe sites to be pristine again once probes are removed. Its error
// names the bytes that do not, or the last read error, and the processes
// that hold BPF links.
func WaitCodeBytes(pid int, exe string, bytes []CodeByte, limit time.Duration) error {
	offs := make([]uint64, len(bytes))
	for i, b := range bytes {
		offs[i] = b.Off
	}
	var bad []string
	for deadline := time.Now().Add(limit); ; time.Sleep(10 * time.Millisecond) {
		got, err := CodeBytes(pid, exe, offs)
		bad = bad[:0]
		if err != nil {
			bad = append(bad, err.Error())
		}
		for i, b := range bytes {
			if err == nil && got[i] != b.Want {
				bad = append(bad, fmt.Sprintf("%s file offset %#x: %#x, want %#x", b.Name, b.Off, got[i], b.Want))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d: code bytes not as expected after %s:\n%s\nBPF link holders: %s", pid, limit, strings.Join(bad, "\n"), LinkHolders())
		}
	}
}

// LinkHolders lists the processes that hold BPF link file descriptors.
func LinkHolders() string {
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	n := map[string]int{}
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.Contains(l, "bpf_link") {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			n[pid+" "+strings.TrimSpace(string(comm))]++
		}
	}
	return fmt.Sprint(n)
}
