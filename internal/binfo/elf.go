package binfo

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// Limits on what one analysis may hold. Headers of a hostile file can
// claim any size or count; reach believes a claim only as far as the file
// really stores the bytes it implies, and never beyond maxAnalysis.
const (
	// maxAnalysis caps the bytes one Binary reads from its file plus
	// those it allocates for the tables it decodes (Funcs and their
	// inline trees). Real binaries need a small fraction of their size:
	// Go 1.26's 26 MB compiler takes 14 MB.
	maxAnalysis = 1 << 30
	// sparseMin is the size from which a read must be at least half
	// stored on disk: the holes of a sparse file read as zeros, cost
	// memory and no disk.
	sparseMin = 1 << 20
)

// segment is one PT_LOAD program header: the file bytes [off, off+filesz)
// are loaded at [vaddr, vaddr+filesz).
type segment struct {
	vaddr, off, filesz uint64
}

// image is the ELF file as reach reads it: its loaded segments and a reader
// bounded by the file size.
type image struct {
	name string
	r    io.ReaderAt
	size int64
	f    *elf.File
	segs []segment
	file *os.File     // the file under r, nil when r is not a file
	used atomic.Int64 // bytes charged against maxAnalysis
}

// fileOffset converts a link-time virtual address to a file offset using
// the PT_LOAD program headers: off = addr - p_vaddr + p_offset.
func (im *image) fileOffset(addr uint64) (uint64, bool) {
	for _, s := range im.segs {
		if addr >= s.vaddr && addr-s.vaddr < s.filesz {
			return addr - s.vaddr + s.off, true
		}
	}
	return 0, false
}

// readAt reads n bytes at file offset off, refusing reads beyond the file,
// of sparse holes, or over the analysis's limit (see allow).
func (im *image) readAt(off, n uint64) ([]byte, error) {
	if err := im.allow(off, n, n); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := im.r.ReadAt(buf, int64(off)); err != nil {
		return nil, fmt.Errorf("read %d bytes at offset %#x: %v: %w", n, off, err, ErrCorrupt)
	}
	return buf, nil
}

// allow checks that the n bytes at file offset off are in the file and
// mostly stored on disk, and charges cost bytes against maxAnalysis.
func (im *image) allow(off, n, cost uint64) error {
	if off > uint64(im.size) || n > uint64(im.size)-off {
		return fmt.Errorf("read of %d bytes at offset %#x beyond the end of the file (%d bytes): %w", n, off, im.size, ErrCorrupt)
	}
	if n >= sparseMin && im.file != nil {
		if stored, ok := storedBytes(im.file, int64(off), int64(n)); ok && uint64(stored) < n/2 {
			return fmt.Errorf("%d bytes at offset %#x are mostly holes of a sparse file (%d bytes stored): %w", n, off, stored, ErrCorrupt)
		}
	}
	return im.charge(cost)
}

// charge counts n bytes read or allocated against maxAnalysis.
func (im *image) charge(n uint64) error {
	if n > maxAnalysis || im.used.Add(int64(n)) > maxAnalysis {
		return fmt.Errorf("analysing it needs more than %d MiB, reach's limit for one binary: %w", maxAnalysis>>20, ErrUnsupported)
	}
	return nil
}

// readAddr reads n bytes at the link-time virtual address addr. The range
// must lie in one loaded segment's file bytes.
func (im *image) readAddr(addr, n uint64) ([]byte, error) {
	for _, s := range im.segs {
		if addr >= s.vaddr && addr-s.vaddr < s.filesz {
			if n > s.filesz-(addr-s.vaddr) {
				return nil, fmt.Errorf("range %#x+%d crosses the end of its segment: %w", addr, n, ErrCorrupt)
			}
			return im.readAt(addr-s.vaddr+s.off, n)
		}
	}
	return nil, fmt.Errorf("address %#x is not in a loaded segment: %w", addr, ErrCorrupt)
}

// sectionData reads an allocated section's bytes, refusing sections that
// claim more bytes than the file has.
func (im *image) sectionData(s *elf.Section) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("section %s has no data: %w", s.Name, ErrCorrupt)
	}
	if s.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, fmt.Errorf("section %s is compressed: %w", s.Name, ErrUnsupported)
	}
	b, err := im.readAt(s.Offset, s.Size)
	if err != nil {
		return nil, fmt.Errorf("section %s: %w", s.Name, err)
	}
	return b, nil
}

func newImage(r io.ReaderAt, size int64, name string, f *elf.File, file *os.File) *image {
	im := &image{name: name, r: r, size: size, f: f, file: file}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		im.segs = append(im.segs, segment{vaddr: p.Vaddr, off: p.Off, filesz: p.Filesz})
	}
	return im
}

// buildID returns the Go build ID from the .note.go.buildid note, else the
// GNU build ID (hex) from .note.gnu.build-id, else "".
func (im *image) buildID() string {
	if s := im.f.Section(".note.go.buildid"); s != nil && s.Size < 1<<16 {
		if name, desc, ok := im.note(s); ok && name == "Go" {
			return string(bytes.TrimRight(desc, "\x00"))
		}
	}
	if s := im.f.Section(".note.gnu.build-id"); s != nil && s.Size < 1<<16 {
		if name, desc, ok := im.note(s); ok && name == "GNU" {
			return hex.EncodeToString(desc)
		}
	}
	return ""
}

// note decodes the first ELF note in section s.
func (im *image) note(s *elf.Section) (name string, desc []byte, ok bool) {
	b, err := im.sectionData(s)
	if err != nil || len(b) < 12 {
		return "", nil, false
	}
	bo := im.f.ByteOrder
	namesz, descsz := uint64(bo.Uint32(b)), uint64(bo.Uint32(b[4:]))
	b = b[12:]
	nameEnd := (namesz + 3) &^ 3
	if nameEnd > uint64(len(b)) || descsz > uint64(len(b))-nameEnd {
		return "", nil, false
	}
	return string(bytes.TrimRight(b[:namesz], "\x00")), b[nameEnd : nameEnd+descsz], true
}

// hasSection reports whether the file has a section with one of the names.
func (im *image) hasSection(names ...string) bool {
	for _, n := range names {
		if im.f.Section(n) != nil {
			return true
		}
	}
	return false
}

// sectionAt returns the allocated section holding addr.
func (im *image) sectionAt(addr uint64) *elf.Section {
	for _, s := range im.f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS && addr >= s.Addr && addr-s.Addr < s.Size {
			return s
		}
	}
	return nil
}

// isELF reports whether r starts with the ELF magic.
func isELF(r io.ReaderAt) bool {
	var m [4]byte
	if _, err := r.ReadAt(m[:], 0); err != nil {
		return false
	}
	return string(m[:]) == elf.ELFMAG
}

// le is the byte order of every binary reach supports.
var le = binary.LittleEndian
