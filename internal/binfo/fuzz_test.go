package binfo

import (
	"bytes"
	"testing"
)

// FuzzNewFile feeds mutated ELF files through every parser: ELF headers,
// build information, pclntab, inline trees, pc-value tables, and the
// methods that decode code. None may panic or allocate without bound.
func FuzzNewFile(f *testing.F) {
	seed := synthELF()
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	corrupt := bytes.Clone(seed)
	corrupt[0x1000+16] ^= 0xff // in main.main's code
	f.Add(corrupt)
	f.Add([]byte("\x7fELF"))
	// A pclntab header claiming 2^24 functions in a table of a few hundred
	// bytes: nothing may be allocated for them.
	claims := bytes.Clone(seed)
	if i := bytes.Index(claims, []byte{0xf1, 0xff, 0xff, 0xff, 0, 0}); i >= 0 {
		copy(claims[i+8:], le64(1<<24))
		f.Add(claims)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := NewFile(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		for i := range b.Funcs {
			if i >= 16 {
				break
			}
			fn := &b.Funcs[i]
			b.EntrySite(fn)
			for k := range fn.Inlines {
				b.InlineSites(fn, k)
			}
			b.Frames(fn.Entry)
			b.Frames(fn.End - 1)
			b.FuncAt(fn.Entry)
		}
		b.DWARFInlines()
	})
}

// FuzzCopySites runs the entry and probe rules of InlineSites over
// arbitrary code, with the instructions whose offset's bit is set in mask
// as the copy, and checks what they promise: entries are the copy's, and a
// probe that moved from its entry is an emulated instruction within reach
// of it, in the copy after it or outside the copy before it.
func FuzzCopySites(f *testing.F) {
	f.Add([]byte{0x48, 0x89, 0xd0, 0xe8, 0, 0, 0, 0, 0xc3}, uint64(0b11111110), uint32(0))
	f.Add([]byte{0x90, 0x48, 0x8b, 0x18, 0xc3, 0xeb, 0xfa}, uint64(0b11110), uint32(1))
	f.Add([]byte{0xff, 0xe0, 0x48, 0x8b, 0x18, 0x74, 0xfb, 0xc3}, uint64(0b11111100), uint32(0))
	f.Fuzz(func(t *testing.T, code []byte, mask uint64, deferreturn uint32) {
		if len(code) > 4096 {
			return
		}
		insts := (&Binary{}).decodeCode(0x401000, code)
		in := func(off uint32) bool { return mask>>(off%64)&1 == 1 }
		fc := newFuncCode(insts, deferreturn)
		for _, e := range classifyEntries(fc, in) {
			if e.k < 0 || e.k >= len(insts) || !in(insts[e.k].off) {
				t.Fatalf("entry %d is not an instruction of the copy", e.k)
			}
			p := entryProbe(fc, e.k, in, func(off uint32) bool { return !in(off) })
			if p == e.k {
				continue
			}
			if p < 0 || p >= len(insts) || !insts[p].emulated {
				t.Fatalf("probe of entry %d moved to %d, not an emulated instruction", e.k, p)
			}
			if d := int64(insts[p].off) - int64(insts[e.k].off); d > entryWalkBytes || d < -entryWalkBytes {
				t.Fatalf("probe of entry %d moved %d bytes", e.k, d)
			}
			if (p > e.k) != in(insts[p].off) {
				t.Fatalf("probe of entry %d moved to %d: after it outside the copy, or before it inside", e.k, p)
			}
		}
	})
}
