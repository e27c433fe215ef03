package binfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestOpenErrors opens files that are not Go binaries, or damaged ones,
// and checks the error kind and that the error names the file.
func TestOpenErrors(t *testing.T) {
	good, err := os.ReadFile(testprog.Build(t, filepath.Join("testdata", "frames"), testprog.Stripped))
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	pcln := ef.Section(".gopclntab")
	if pcln == nil {
		t.Fatal("fixture has no .gopclntab")
	}
	edit := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	synth := synthELF()
	tests := []struct {
		name string
		data []byte
		path string // instead of data
		want error
	}{
		{name: "text file", data: []byte("hello, world\n"), want: ErrNotGoBinary},
		{name: "empty file", data: []byte{}, want: ErrNotGoBinary},
		{name: "non-Go ELF", path: "/bin/true", want: ErrNotGoBinary},
		{name: "directory", path: "testdata", want: ErrNotGoBinary},
		{name: "ELF magic only", data: []byte("\x7fELF"), want: ErrCorrupt},
		{name: "truncated to 100 bytes", data: good[:100], want: ErrCorrupt},
		{name: "truncated to half", data: good[:len(good)/2], want: ErrCorrupt},
		{name: "bad ELF class", data: edit(func(b []byte) []byte { b[elf.EI_CLASS] = 9; return b }), want: ErrCorrupt},
		{name: "other architecture", data: edit(func(b []byte) []byte { b[18] = byte(elf.EM_386); return b }), want: ErrUnsupported},
		{name: "zeroed pclntab magic", data: edit(func(b []byte) []byte { copy(b[pcln.Offset:], make([]byte, 4)); return b }), want: ErrCorrupt},
		{name: "Go 1.16 pclntab", data: edit(func(b []byte) []byte { copy(b[pcln.Offset:], le32(magic116)); return b }), want: ErrUnsupported},
		{name: "pclntab function count too large", data: edit(func(b []byte) []byte { copy(b[pcln.Offset+8:], le64(1<<40)); return b }), want: ErrCorrupt},
		{name: "pclntab table offset outside", data: edit(func(b []byte) []byte { copy(b[pcln.Offset+8+8*7:], le64(1<<40)); return b }), want: ErrCorrupt},
		{name: "no build information", data: edit(func(b []byte) []byte {
			i := bytes.Index(b, []byte("\xff Go buildinf:"))
			copy(b[i:], make([]byte, 14))
			return b
		}), want: ErrCorrupt},
		{name: "synthetic truncated", data: synth[:0x1100], want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = filepath.Join(t.TempDir(), "bin")
				if err := os.WriteFile(path, tt.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := Open(path)
			if err == nil {
				b.Close()
				t.Fatalf("Open succeeded, want %v", tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestOpenNoFile checks that a missing file is an os error, not a kind of
// bad binary.
func TestOpenNoFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrNotGoBinary) {
		t.Errorf("Open(missing) = %v, want a not-exist error", err)
	}
}
