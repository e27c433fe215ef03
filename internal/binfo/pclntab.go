package binfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"strings"
)

// pclntab magics (runtime/symtab.go, internal/abi).
const (
	magic12  = 0xfffffffb // Go 1.2 to 1.15
	magic116 = 0xfffffffa // Go 1.16, 1.17
	magic118 = 0xfffffff0 // Go 1.18, 1.19
	magic120 = 0xfffffff1 // Go 1.20 and later
)

// Indexes of the pcdata and funcdata tables reach reads
// (cmd/internal/objabi/funcdata.go).
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
)

// pclntab is a decoded pclntab header with the tables it points to. Strings
// are substrings of one conversion of each table, so names cost no
// allocation.
type pclntab struct {
	addr    uint64 // link-time address of the header
	magic   uint32
	minLC   uint32 // instruction size quantum
	nfunc   int
	nfiles  int
	textHdr uint64 // textStart from the header; 0 in Go 1.26 and later

	funcnameOff uint64 // offset of funcnametab from the header
	pclnOff     uint64 // offset of the function table from the header

	funcnames string // funcnametab
	cutab     []byte
	filetab   string
	pctab     []byte
	functab   []byte // pclntable: the ftab followed by the _func records

	// Layout of _func for this version.
	funcSize int // fixed part, up to and including nfuncdata
}

// errNoPclntab reports that no pclntab was found.
var errNoPclntab = errors.New("no pclntab")

// findPclntab locates the pclntab: by section name, by the runtime.pclntab
// symbol, or by its magic number in a read-only data section (PIE binaries
// linked externally merge it into .data.rel.ro).
func findPclntab(im *image) (addr uint64, data []byte, err error) {
	for _, name := range []string{".gopclntab", ".data.rel.ro.gopclntab"} {
		if s := im.f.Section(name); s != nil {
			data, err := im.sectionData(s)
			if err != nil {
				return 0, nil, fmt.Errorf("read pclntab: %w", err)
			}
			return s.Addr, data, nil
		}
	}
	// The symbol table, when present, names it. debug/elf reads it whole
	// into Symbols of about 3 times its size.
	if syms, err := im.symbols(); err == nil {
		var start, end uint64
		for _, s := range syms {
			switch s.Name {
			case "runtime.pclntab":
				start = s.Value
			case "runtime.epclntab":
				end = s.Value
			}
		}
		if start != 0 && end > start {
			data, err := im.readAddr(start, end-start)
			if err != nil {
				return 0, nil, fmt.Errorf("read pclntab: %w", err)
			}
			return start, data, nil
		}
	}
	// Scan read-only data for a plausible header.
	for _, s := range im.f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_EXECINSTR != 0 {
			continue
		}
		if !strings.HasPrefix(s.Name, ".rodata") && !strings.HasPrefix(s.Name, ".data.rel.ro") {
			continue
		}
		data, err := im.sectionData(s)
		if err != nil {
			continue
		}
		for _, m := range [][]byte{{0xf1, 0xff, 0xff, 0xff, 0, 0}, {0xf0, 0xff, 0xff, 0xff, 0, 0}} {
			for i := 0; ; {
				j := bytes.Index(data[i:], m)
				if j < 0 {
					break
				}
				i += j
				if i%8 == 0 {
					if _, err := parsePclntab(s.Addr+uint64(i), data[i:]); err == nil {
						return s.Addr + uint64(i), data[i:], nil
					}
				}
				i++
			}
		}
	}
	return 0, nil, errNoPclntab
}

// symbols returns the ELF symbol table once allow has accepted the
// sections debug/elf reads for it.
func (im *image) symbols() ([]elf.Symbol, error) {
	s := im.f.SectionByType(elf.SHT_SYMTAB)
	if s == nil || int(s.Link) >= len(im.f.Sections) {
		return nil, elf.ErrNoSymbols
	}
	str := im.f.Sections[s.Link]
	if err := im.allow(s.Offset, s.Size, 4*s.Size); err != nil {
		return nil, err
	}
	if err := im.allow(str.Offset, str.Size, str.Size); err != nil {
		return nil, err
	}
	return im.f.Symbols()
}

// parsePclntab decodes the header at the start of data and slices out the
// tables, checking every offset against len(data).
func parsePclntab(addr uint64, data []byte) (*pclntab, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("pclntab header truncated: %w", ErrCorrupt)
	}
	t := &pclntab{addr: addr, magic: le.Uint32(data)}
	switch t.magic {
	case magic118:
		t.funcSize = 40
	case magic120:
		t.funcSize = 44
	case magic116, magic12:
		return nil, fmt.Errorf("pclntab of Go 1.17 or older (magic %#x): %w; rebuild with Go 1.18 or later", t.magic, ErrUnsupported)
	default:
		return nil, fmt.Errorf("bad pclntab magic %#x: %w", t.magic, ErrCorrupt)
	}
	if data[4] != 0 || data[5] != 0 {
		return nil, fmt.Errorf("bad pclntab header padding: %w", ErrCorrupt)
	}
	t.minLC = uint32(data[6])
	if ptr := data[7]; ptr != 8 {
		return nil, fmt.Errorf("pclntab pointer size %d (only 64-bit is supported): %w", ptr, ErrUnsupported)
	}
	if t.minLC != 1 && t.minLC != 2 && t.minLC != 4 {
		return nil, fmt.Errorf("bad pclntab instruction size %d: %w", t.minLC, ErrCorrupt)
	}
	const hdrSize = 8 + 8*8
	if len(data) < hdrSize {
		return nil, fmt.Errorf("pclntab header truncated: %w", ErrCorrupt)
	}
	word := func(i int) uint64 { return le.Uint64(data[8+8*i:]) }
	nfunc, nfiles := word(0), word(1)
	t.textHdr = word(2)
	size := uint64(len(data))
	offs := [5]uint64{word(3), word(4), word(5), word(6), word(7)} // funcname, cu, file, pc, pcln
	for i, o := range offs {
		if o < hdrSize || o > size {
			return nil, fmt.Errorf("pclntab table %d at offset %#x outside the table (%d bytes): %w", i, o, size, ErrCorrupt)
		}
	}
	// Each function needs an 8-byte ftab entry and a _func record.
	if nfunc == 0 || nfunc > size/uint64(8+t.funcSize) || nfiles > size {
		return nil, fmt.Errorf("pclntab claims %d functions and %d files in %d bytes: %w", nfunc, nfiles, size, ErrCorrupt)
	}
	t.nfunc, t.nfiles = int(nfunc), int(nfiles)
	// The tables follow one another in this order; each ends where the
	// next begins, and the function table runs to the end.
	if !(offs[0] <= offs[1] && offs[1] <= offs[2] && offs[2] <= offs[3] && offs[3] <= offs[4]) {
		return nil, fmt.Errorf("pclntab tables out of order: %w", ErrCorrupt)
	}
	t.funcnameOff = offs[0]
	t.funcnames = string(data[offs[0]:offs[1]])
	t.cutab = data[offs[1]:offs[2]]
	t.filetab = string(data[offs[2]:offs[3]])
	t.pctab = data[offs[3]:offs[4]]
	t.functab = data[offs[4]:]
	t.pclnOff = offs[4]
	if uint64(len(t.functab)) < (nfunc+1)*8 {
		return nil, fmt.Errorf("pclntab function table truncated: %w", ErrCorrupt)
	}
	return t, nil
}

// ftab returns the i-th function table entry (0 <= i <= nfunc).
func (t *pclntab) ftab(i int) (entryOff, funcOff uint32) {
	return le.Uint32(t.functab[8*i:]), le.Uint32(t.functab[8*i+4:])
}

// fn returns the _func record at funcOff, or false when it does not fit.
func (t *pclntab) fn(funcOff uint32) (funcRec, bool) {
	off := uint64(funcOff)
	if off+uint64(t.funcSize) > uint64(len(t.functab)) {
		return funcRec{}, false
	}
	b := t.functab[off:]
	r := funcRec{b: b, t: t}
	n := uint64(t.funcSize) + 4*(uint64(r.npcdata())+uint64(r.nfuncdata()))
	if off+n > uint64(len(t.functab)) {
		return funcRec{}, false
	}
	r.b = b[:n]
	return r, true
}

// funcRec is one _func record (runtime/runtime2.go) with its trailing
// pcdata and funcdata offsets; its length has been checked.
type funcRec struct {
	b []byte
	t *pclntab
}

func (r funcRec) entryOff() uint32    { return le.Uint32(r.b[0:]) }
func (r funcRec) nameOff() uint32     { return le.Uint32(r.b[4:]) }
func (r funcRec) deferreturn() uint32 { return le.Uint32(r.b[12:]) }
func (r funcRec) pcsp() uint32        { return le.Uint32(r.b[16:]) }
func (r funcRec) pcfile() uint32      { return le.Uint32(r.b[20:]) }
func (r funcRec) pcln() uint32        { return le.Uint32(r.b[24:]) }
func (r funcRec) npcdata() uint32     { return le.Uint32(r.b[28:]) }
func (r funcRec) cuOffset() uint32    { return le.Uint32(r.b[32:]) }
func (r funcRec) nfuncdata() uint32   { return uint32(r.b[r.t.funcSize-1]) }

// pcdata returns the pctab offset of pcdata table i, or 0 when absent.
func (r funcRec) pcdata(i uint32) uint32 {
	if i >= r.npcdata() {
		return 0
	}
	return le.Uint32(r.b[r.t.funcSize+4*int(i):])
}

// funcdata returns the offset from gofunc of funcdata i, or false.
func (r funcRec) funcdata(i uint32) (uint32, bool) {
	if i >= r.nfuncdata() {
		return 0, false
	}
	off := le.Uint32(r.b[r.t.funcSize+4*int(r.npcdata()+i):])
	return off, off != ^uint32(0)
}

// name returns the NUL-terminated string at off in the function name table.
func (t *pclntab) name(off uint32) string {
	return cstring(t.funcnames, off)
}

// file returns the name of file fileno of the compilation unit at cuOff.
func (t *pclntab) file(cuOff uint32, fileno int32) string {
	if fileno < 0 {
		return "?"
	}
	i := uint64(cuOff) + uint64(fileno)
	if 4*i+4 > uint64(len(t.cutab)) {
		return "?"
	}
	off := le.Uint32(t.cutab[4*i:])
	if off == ^uint32(0) {
		return "?"
	}
	return cstring(t.filetab, off)
}

func cstring(tab string, off uint32) string {
	if uint64(off) >= uint64(len(tab)) {
		return ""
	}
	s := tab[off:]
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// nameForPrint replaces the type arguments of a generic function's name
// with "...", as the runtime's funcNameForPrint does.
func nameForPrint(name string) string {
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return name
	}
	j := strings.LastIndexByte(name, ']')
	if j <= i {
		return name
	}
	return name[:i] + "[...]" + name[j+1:]
}
