package probe

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

func TestKernelVersion(t *testing.T) {
	tests := []struct {
		rel          string
		major, minor int
		ok           bool
	}{
		{"6.18.0-1-amd64", 6, 18, true},
		{"6.9", 6, 9, true},
		{"6.10-rc1", 6, 10, true},
		{"5.15.0-91-generic", 5, 15, true},
		{"weird", 0, 0, false},
	}
	for _, tt := range tests {
		major, minor, ok := kernelVersion(tt.rel)
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("kernelVersion(%q) = %d, %d, %v", tt.rel, major, minor, ok)
		}
	}
}

// TestFetchAddEncoding guards the workaround in fetchAdd: the instruction
// must carry BPF_ADD|BPF_FETCH (1) in its immediate.
func TestFetchAddEncoding(t *testing.T) {
	var buf bytes.Buffer
	if _, err := fetchAdd(asm.R0, asm.R1).Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) != 8 || b[0] != 0xdb || b[4] != 1 {
		t.Errorf("fetch-add encodes as % x, want opcode db and immediate 1", b)
	}
}

// TestAddAtomicEncoding guards the callsite counters, which use a plain
// atomic add: its immediate must be BPF_ADD (0), which the encoding bug
// fetchAdd works around leaves alone.
func TestAddAtomicEncoding(t *testing.T) {
	var buf bytes.Buffer
	if _, err := asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0).Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) != 8 || b[0] != 0xdb || b[4] != 0 {
		t.Errorf("atomic add encodes as % x, want opcode db and immediate 0", b)
	}
}
