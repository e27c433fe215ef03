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
