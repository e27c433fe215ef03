package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
)

func TestMissingCaps(t *testing.T) {
	tests := []struct {
		status string
		want   string // "" for no error
	}{
		{"Name:\treach\nCapEff:\t000001ffffffffff\n", ""},
		{"CapEff:\t0000000000200000\n", ""},                                // CAP_SYS_ADMIN
		{"CapEff:\t000000c000000000\n", ""},                                // CAP_BPF and CAP_PERFMON
		{"CapEff:\t0000008000000000\n", "missing CAP_PERFMON"},             // CAP_BPF only
		{"CapEff:\t0000000000000000\n", "missing CAP_BPF and CAP_PERFMON"}, // none
	}
	for _, tt := range tests {
		eff, err := parseCapEff([]byte(tt.status))
		if err != nil {
			t.Fatal(err)
		}
		err = missingCaps(eff)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.status, err)
		case tt.want != "" && (!errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want ErrPermission saying %q", tt.status, err, tt.want)
		}
	}
	for _, bad := range []string{"Name: x\n", "CapEff:\tzz\n"} {
		if _, err := parseCapEff([]byte(bad)); err == nil {
			t.Errorf("parseCapEff(%q) did not fail", bad)
		}
	}
}

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
