package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A BPF cookie names one site of one arming (one group armed in one
// process):
//
//	bits  0..23  site index in the group
//	bits 24..25  site kind
//	bit  26      count mode: count and report per stack
//	bits 32..63  arming ID
const (
	cookieSiteMask  = MaxSites - 1
	cookieKindShift = 24
	cookieKindMask  = 3
	cookieCountBit  = 1 << 26
	cookieArmShift  = 32
)

func makeCookie(arm uint32, site int, kind SiteKind, mode Mode) uint64 {
	c := uint64(arm)<<cookieArmShift | uint64(kind&cookieKindMask)<<cookieKindShift | uint64(site&cookieSiteMask)
	if mode == Count {
		c |= cookieCountBit
	}
	return c
}

// siteMode is the mode a site's cookie carries: an Uncounted site's hits
// are not counted per callsite, so the kernel treats it as in one-shot
// mode (the engine still keeps the group after a first hit there).
func siteMode(s Site, m Mode) Mode {
	if s.Uncounted {
		return OneShot
	}
	return m
}

func cookieArm(c uint64) uint32     { return uint32(c >> cookieArmShift) }
func cookieSite(c uint64) int       { return int(c & cookieSiteMask) }
func cookieKind(c uint64) SiteKind  { return SiteKind(c >> cookieKindShift & cookieKindMask) }
func cookieCountMode(c uint64) bool { return c&cookieCountBit != 0 }

// The ring buffer record the BPF program writes, little endian:
//
//	 0 cookie     u64
//	 8 pid_tgid   u64 (thread ID in the low half, process ID in the high half)
//	16 ktime      u64 (CLOCK_MONOTONIC, ns)
//	24 ip         u64
//	32 sp         u64
//	40 bp         u64
//	48 ret        u64
//	56 count      u64
//	64 flags      u32
//	68 stack_len  s32 (bytes written by bpf_get_stack, or -errno)
//	72 key        u64 (count mode: the stack's callsite key, see Hit.Key)
//	80 stack      [stackDepth]u64
const (
	stackDepth = 64
	recStack   = 80
	recordSize = recStack + 8*stackDepth

	flagFirst    = 1
	flagCallsite = 2
)

var errBadRecord = errors.New("bad ring buffer record")

// record is a decoded ring buffer record.
type record struct {
	cookie   uint64
	pid, tid int
	ktime    uint64
	ip       uint64
	sp, bp   uint64
	ret      uint64
	count    uint64
	flags    uint32
	key      uint64
	stack    []uint64
}

func decodeRecord(b []byte) (record, error) {
	if len(b) < recStack {
		return record{}, fmt.Errorf("%w: %d bytes, want %d", errBadRecord, len(b), recordSize)
	}
	le := binary.LittleEndian
	pidTgid := le.Uint64(b[8:])
	r := record{
		cookie: le.Uint64(b[0:]),
		tid:    int(uint32(pidTgid)),
		pid:    int(pidTgid >> 32),
		ktime:  le.Uint64(b[16:]),
		ip:     le.Uint64(b[24:]),
		sp:     le.Uint64(b[32:]),
		bp:     le.Uint64(b[40:]),
		ret:    le.Uint64(b[48:]),
		count:  le.Uint64(b[56:]),
		flags:  le.Uint32(b[64:]),
		key:    le.Uint64(b[72:]),
	}
	if r.flags&(flagFirst|flagCallsite) == 0 {
		return record{}, fmt.Errorf("%w: flags %#x", errBadRecord, r.flags)
	}
	n := int32(le.Uint32(b[68:]))
	if n < 0 {
		n = 0 // the stack could not be read; the rest of the record is good
	}
	frames := min(int(n)/8, stackDepth, (len(b)-recStack)/8)
	r.stack = make([]uint64, frames)
	for i := range r.stack {
		r.stack[i] = le.Uint64(b[recStack+8*i:])
	}
	return r, nil
}
