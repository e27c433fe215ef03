package probe

import (
	"debug/elf"
	"fmt"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// fn is a function of a test binary, located from its .symtab. The proper,
// pclntab-based analysis is internal/binfo's job; this is enough for tests.
type fn struct {
	name     string
	lo, hi   uint64 // link-time addresses [lo, hi)
	entry    Site
	push     Site // Offset 0 when the function has no PUSH RBP
	original byte // the code byte at the push site, or at the entry if none
}

func locate(t testing.TB, path string, names ...string) map[string]fn {
	t.Helper()
	fns, err := locateFuncs(path, names...)
	if err != nil {
		t.Fatal(err)
	}
	return fns
}

func locateFuncs(path string, names ...string) (map[string]fn, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]fn{}
	for _, s := range syms {
		if !want[s.Name] || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
			continue
		}
		code, off, err := codeAt(f, s.Value, s.Size)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", s.Name, path, err)
		}
		x := fn{name: s.Name, lo: s.Value, hi: s.Value + s.Size,
			entry: Site{Offset: off, PC: s.Value, Kind: SiteEntry}, original: code[0]}
		for i := 0; i < len(code); {
			inst, err := x86asm.Decode(code[i:], 64)
			if err != nil {
				return nil, fmt.Errorf("decode %s+%#x: %w", s.Name, i, err)
			}
			if inst.Op == x86asm.PUSH && inst.Args[0] == x86asm.RBP {
				x.push = Site{Offset: off + uint64(i), PC: s.Value + uint64(i), Kind: SitePushBP}
				x.original = code[i]
				break
			}
			if inst.Op == x86asm.RET {
				break
			}
			i += inst.Len
		}
		out[s.Name] = x
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s: no function %s in .symtab", path, n)
		}
	}
	return out, nil
}

// codeAt returns the bytes of [addr, addr+size) and the file offset of addr.
func codeAt(f *elf.File, addr, size uint64) ([]byte, uint64, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || addr < p.Vaddr || addr+size > p.Vaddr+p.Filesz {
			continue
		}
		off := addr - p.Vaddr + p.Off
		b := make([]byte, size)
		if _, err := p.ReadAt(b, int64(addr-p.Vaddr)); err != nil {
			return nil, 0, err
		}
		return b, off, nil
	}
	return nil, 0, fmt.Errorf("address %#x not in an executable PT_LOAD segment", addr)
}
