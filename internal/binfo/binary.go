package binfo

import "fmt"

// Binary is an opened Go binary.
type Binary struct {
	Path      string
	BuildID   string // the Go build ID, or the GNU build ID when there is none
	GoVersion string // as the toolchain writes it, such as "go1.21.0"
	GOOS      string
	GOARCH    string
	Main      Module
	Deps      []Module
	Settings  []Setting
	Stripped  bool // no .symtab and no DWARF
	PIE       bool
	// Funcs is every function in the pclntab, sorted by Entry.
	Funcs []Func
}

// Open reads the Go binary at path.
//
// TODO(binfo): implementation pending.
func Open(path string) (*Binary, error) {
	return nil, fmt.Errorf("open %s: not implemented", path)
}

// EntrySite returns the probe site for calls to f: its PUSH RBP when it has
// one, else its entry.
func (b *Binary) EntrySite(f *Func) (Site, error) {
	return Site{}, fmt.Errorf("%s: not implemented", f.Name)
}

// InlineSites returns the probe sites of the inlined call f.Inlines[i]:
// every instruction where execution enters that copy.
func (b *Binary) InlineSites(f *Func, i int) ([]Site, error) {
	return nil, fmt.Errorf("%s: not implemented", f.Name)
}

// FileOffset converts a link-time virtual address to a file offset.
func (b *Binary) FileOffset(pc uint64) (uint64, error) {
	return 0, fmt.Errorf("%#x: not implemented", pc)
}

// FuncAt returns the function containing pc, or nil.
func (b *Binary) FuncAt(pc uint64) *Func { return nil }

// Frames symbolizes pc into its logical frames, innermost first, expanding
// inlined calls as runtime.CallersFrames does.
func (b *Binary) Frames(pc uint64) []Frame { return nil }
