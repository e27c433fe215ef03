package probe

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

func TestCookie(t *testing.T) {
	tests := []struct {
		arm  uint32
		site int
		kind SiteKind
		mode Mode
	}{
		{1, 0, SiteEntry, OneShot},
		{7, 12345, SitePushBP, Count},
		{1<<32 - 1, MaxSites - 1, SiteInline, Count},
	}
	for _, tt := range tests {
		c := makeCookie(tt.arm, tt.site, tt.kind, tt.mode)
		if cookieArm(c) != tt.arm || cookieSite(c) != tt.site || cookieKind(c) != tt.kind || cookieCountMode(c) != (tt.mode == Count) {
			t.Errorf("cookie %#x of %+v decodes to arm %d site %d kind %v count %v", c, tt,
				cookieArm(c), cookieSite(c), cookieKind(c), cookieCountMode(c))
		}
	}
}

func encodeRecord(r record, stackLen int32) []byte {
	b := make([]byte, recordSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], r.cookie)
	le.PutUint64(b[8:], uint64(r.pid)<<32|uint64(r.tid))
	le.PutUint64(b[16:], r.ktime)
	le.PutUint64(b[24:], r.ip)
	le.PutUint64(b[32:], r.sp)
	le.PutUint64(b[40:], r.bp)
	le.PutUint64(b[48:], r.ret)
	le.PutUint64(b[56:], r.count)
	le.PutUint32(b[64:], r.flags)
	le.PutUint32(b[68:], uint32(stackLen))
	le.PutUint64(b[72:], r.key)
	for i, pc := range r.stack {
		le.PutUint64(b[recStack+8*i:], pc)
	}
	return b
}

func TestDecodeRecord(t *testing.T) {
	full := record{cookie: 0x1_0500_0003, pid: 100, tid: 101, ktime: 5, ip: 0x401000, sp: 0xc000,
		bp: 0xc010, ret: 0x402000, count: 3, flags: flagFirst, key: 0x9e3779b97f4a7c15, stack: []uint64{0x401000, 0x402000, 0x403000}}
	tests := []struct {
		name      string
		in        []byte
		wantStack int
		wantErr   bool
	}{
		{"full", encodeRecord(full, 24), 3, false},
		{"stack error", encodeRecord(full, -14), 0, false},
		{"stack longer than the record says", encodeRecord(full, 8*stackDepth+800), stackDepth, false},
		{"truncated stack", encodeRecord(full, 24)[:recStack+8], 1, false},
		{"short", encodeRecord(full, 24)[:40], 0, true},
		{"no flags", encodeRecord(record{cookie: 1}, 0), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decodeRecord(tt.in)
			if tt.wantErr {
				if !errors.Is(err, errBadRecord) {
					t.Fatalf("got %v, want errBadRecord", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.cookie != full.cookie || r.pid != 100 || r.tid != 101 || r.ip != full.ip || r.ret != full.ret || r.count != 3 || r.flags != flagFirst || r.key != full.key {
				t.Errorf("decoded %+v", r)
			}
			if len(r.stack) != tt.wantStack {
				t.Errorf("stack %x: %d frames, want %d", r.stack, len(r.stack), tt.wantStack)
			}
			if n := min(len(r.stack), len(full.stack)); !slices.Equal(r.stack[:n], full.stack[:n]) {
				t.Errorf("stack %x, want a prefix of %x", r.stack, full.stack)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(record{cookie: 1, flags: flagCallsite, stack: []uint64{1, 2}}, 16))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if len(r.stack) > stackDepth || recStack+8*len(r.stack) > len(b) {
			t.Errorf("%d frames from %d bytes", len(r.stack), len(b))
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		g    Group
		ok   bool
	}{
		{"good", Group{ID: 1, Sites: []Site{{Offset: 0x1000, Kind: SiteInline}}}, true},
		{"empty", Group{ID: 1}, false},
		{"offset 0", Group{ID: 1, Sites: []Site{{Offset: 0}}}, false},
		{"bad kind", Group{ID: 1, Sites: []Site{{Offset: 1, Kind: SiteInline + 1}}}, false},
		{"too many", Group{ID: 1, Sites: make([]Site, MaxSites+1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.g.validate(); (err == nil) != tt.ok {
				t.Errorf("validate: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
