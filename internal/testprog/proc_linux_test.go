package testprog

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestWaitCodeBytes reads this test binary's own first bytes (its ELF
// header, mapped with the first segment) through /proc/self/mem: the
// file's bytes are found at once, and a byte that differs is named once
// the limit is up.
func TestWaitCodeBytes(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4)
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(head, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pid := os.Getpid()
	same := []CodeByte{{Off: 1, Want: head[1]}, {Off: 3, Want: head[3]}}
	if err := WaitCodeBytes(pid, exe, same, time.Second); err != nil {
		t.Fatalf("the file's own bytes: %v", err)
	}
	other := []CodeByte{{Off: 1, Want: head[1]}, {Off: 3, Want: head[3] + 1, Name: "fourth"}}
	start := time.Now()
	err = WaitCodeBytes(pid, exe, other, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "fourth file offset 0x3") || strings.Contains(err.Error(), "offset 0x1") {
		t.Fatalf("a byte that differs: got %v, want an error naming only the fourth byte", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("gave up after %s, before the limit", d)
	}
}
