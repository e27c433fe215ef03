package testprog

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// SparsePclntab writes a copy of the Go binary at path that a hostile user
// could plant: a sparse file of size bytes whose .gopclntab section runs to
// the end of the file (holes, stored as nothing) and whose pclntab header
// claims nfunc functions. A reader that believes the headers allocates
// gigabytes for a file that takes a few megabytes on disk. It returns the
// new file, in a directory of t.TempDir().
func SparsePclntab(t testing.TB, path string, size int64, nfunc uint64) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	le := binary.LittleEndian
	shoff, shentsize := le.Uint64(data[0x28:]), uint64(le.Uint16(data[0x3a:]))
	patched := false
	for i, s := range ef.Sections {
		if s.Name != ".gopclntab" {
			continue
		}
		if int64(s.Offset) >= size {
			t.Fatalf("%s: .gopclntab at %#x is beyond %d bytes", path, s.Offset, size)
		}
		le.PutUint64(data[shoff+uint64(i)*shentsize+32:], uint64(size)-s.Offset) // sh_size
		le.PutUint64(data[s.Offset+8:], nfunc)                                   // the header's nfunc
		patched = true
	}
	if !patched {
		t.Fatalf("%s has no .gopclntab section", path)
	}
	out := filepath.Join(t.TempDir(), "sparse-"+filepath.Base(path))
	if err := os.WriteFile(out, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(out, size); err != nil {
		t.Fatal(err)
	}
	return out
}
