package bpfenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

func TestRingSize(t *testing.T) {
	page := unix.Getpagesize()
	for _, n := range []int{0, 1, page, page + 1, 64 << 10, 1<<20 - 1, 1 << 20} {
		got := RingSize(n)
		if got < n || got < page || got%page != 0 || got&(got-1) != 0 || got/2 >= max(n, page) {
			t.Errorf("RingSize(%d) = %d, want the least power-of-two number of %d-byte pages holding it", n, got, page)
		}
	}
}

func TestPermissionHint(t *testing.T) {
	eperm := fmt.Errorf("create map: %w", unix.EPERM)
	if err := PermissionHint(eperm); !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "CAP_BPF") {
		t.Errorf("PermissionHint(%v) = %v, want ErrPermission naming CAP_BPF", eperm, err)
	}
	other := fmt.Errorf("create map: %w", unix.EINVAL)
	if err := PermissionHint(other); err != other {
		t.Errorf("PermissionHint(%v) = %v, want it unchanged", other, err)
	}
}
