package binfo

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/reach-sca/reach/internal/safefile"
)

// Binary is an opened Go binary.
//
// Its exported fields are filled by Open and must not be modified. Its
// methods read the file lazily (function code, DWARF), so the file must
// stay in place until Close. A Binary is safe for concurrent use.
type Binary struct {
	Path      string
	BuildID   string // the Go build ID, or the GNU build ID when there is none
	GoVersion string // as the toolchain writes it, such as "go1.21.0"
	GOOS      string
	GOARCH    string
	// MainPackage is the import path of the main package, such as
	// "example.com/app/cmd/app"; its functions are named "main.*".
	MainPackage string
	// Main is the main module; Deps the dependencies, in the build
	// information's order, followed by the modules that only the source
	// file paths name (Module.Inferred, sorted by path).
	Main Module
	Deps []Module
	// Unversioned lists, sorted, the packages outside the standard
	// library and the main module whose module neither the build
	// information nor the source file paths give a version of: in a test
	// binary, packages vendored (without -trimpath) or of a module
	// replaced by a local directory. Their vulnerabilities cannot be
	// checked.
	Unversioned []string
	Settings    []Setting
	Stripped    bool // no .symtab and no DWARF
	PIE         bool
	// Funcs is every function in the pclntab, sorted by Entry.
	Funcs []Func

	im      *image
	closer  io.Closer
	tab     *pclntab
	md      moduledata
	funcOff []uint32 // _func offset of Funcs[i] in the function table
	// inlRanges caches the decoded InlTreeIndex tables of functions with
	// inlined calls, keyed by index in Funcs; inlCode what InlineSites
	// needs of their code. Both hold only functions asked about.
	mu        sync.Mutex
	inlRanges map[int][]pcRange
	inlCode   map[int]*funcCode
}

// Open reads the Go binary at path. Close releases the file.
//
// Errors wrap ErrNotGoBinary (not ELF, or no Go information),
// ErrUnsupported (a pclntab older than Go 1.18, or a 32-bit or unknown
// architecture) or ErrCorrupt (damaged or truncated structures).
func Open(path string) (*Binary, error) {
	// Not os.Open: opening a FIFO would wait for a writer, for ever.
	f, err := safefile.Open(path)
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, fmt.Errorf("%w: %w; give the path of a Go program", err, ErrNotGoBinary)
	}
	if err != nil {
		return nil, err // a *fs.PathError: "open PATH: ..."
	}
	return OpenFile(f, path)
}

// OpenFile reads the Go binary open as f, named path, as Open does. It
// takes f over: Close closes it, and so does a failure.
func OpenFile(f *os.File, path string) (*Binary, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file: %w; give the path of a Go program", path, ErrNotGoBinary)
	}
	b, err := NewFile(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.closer = f
	return b, nil
}

// NewFile reads a Go binary of size bytes from r; name is used in errors
// and as Path. The Binary reads r lazily: keep r usable while using it.
// Errors are those of Open. When r is an *os.File, tables stored mostly in
// holes of a sparse file are refused as corrupt (see allow).
func NewFile(r io.ReaderAt, size int64, name string) (b *Binary, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("read %s: %w", name, err)
		}
	}()
	if size < 0 {
		return nil, fmt.Errorf("negative size: %w", ErrCorrupt)
	}
	file, _ := r.(*os.File) // for the sparse-file checks
	r = io.NewSectionReader(r, 0, size)
	if !isELF(r) {
		return nil, fmt.Errorf("not an ELF file: %w (is it a Go program built for Linux?)", ErrNotGoBinary)
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("bad ELF headers: %v: %w", err, ErrCorrupt)
	}
	im := newImage(r, size, name, ef, file)
	b = &Binary{Path: name, im: im}

	bi, biErr := buildinfo.Read(r)
	pcAddr, pcData, pcErr := findPclntab(im)
	switch {
	case errors.Is(pcErr, errNoPclntab) && biErr != nil:
		return nil, fmt.Errorf("no Go build information and no pclntab: %w (is it a Go program?)", ErrNotGoBinary)
	case pcErr != nil && !errors.Is(pcErr, errNoPclntab):
		return nil, pcErr
	case pcErr != nil:
		return nil, fmt.Errorf("Go build information but no pclntab: %w", ErrCorrupt)
	case biErr != nil:
		return nil, fmt.Errorf("pclntab but no readable Go build information (%v): %w", biErr, ErrCorrupt)
	}

	switch ef.Machine {
	case elf.EM_X86_64:
		b.GOARCH = "amd64"
	case elf.EM_AARCH64:
		b.GOARCH = "arm64"
	default:
		return nil, fmt.Errorf("architecture %v: %w; reach reads amd64 and arm64 binaries", ef.Machine, ErrUnsupported)
	}
	if ef.Class != elf.ELFCLASS64 || ef.ByteOrder != le {
		return nil, fmt.Errorf("not a 64-bit little-endian ELF: %w", ErrUnsupported)
	}
	b.GOOS = "linux"
	b.setBuildInfo(bi)
	b.BuildID = im.buildID()
	b.PIE = ef.Type == elf.ET_DYN
	b.Stripped = !im.hasSection(".symtab") && !im.hasSection(".debug_info", ".zdebug_info")

	tab, err := parsePclntab(pcAddr, pcData)
	if err != nil {
		return nil, err
	}
	b.tab = tab
	b.md, _ = findModuledata(im, tab)
	if err := b.loadFuncs(); err != nil {
		return nil, err
	}
	// The go command lists every dependency whenever it lists any: only
	// build information without dependencies (test binaries) lacks some,
	// and other binaries need not pay for reading every function's file.
	if len(b.Deps) == 0 {
		b.inferModules()
	}
	return b, nil
}

// Close closes the file opened by Open. Methods that read code or DWARF
// fail after Close.
func (b *Binary) Close() error {
	if b.closer == nil {
		return nil
	}
	err := b.closer.Close()
	b.closer = nil
	return err
}

func (b *Binary) setBuildInfo(bi *buildinfo.BuildInfo) {
	b.GoVersion = bi.GoVersion
	b.MainPackage = bi.Path
	b.Main = Module{Path: bi.Main.Path, Version: bi.Main.Version, Sum: bi.Main.Sum}
	for _, d := range bi.Deps {
		m := Module{Path: d.Path, Version: d.Version, Sum: d.Sum}
		if d.Replace != nil {
			m.Replace = &Module{Path: d.Replace.Path, Version: d.Replace.Version, Sum: d.Replace.Sum}
		}
		b.Deps = append(b.Deps, m)
	}
	for _, s := range bi.Settings {
		b.Settings = append(b.Settings, Setting{Key: s.Key, Value: s.Value})
		switch s.Key {
		case "GOOS":
			b.GOOS = s.Value
		case "GOARCH":
			b.GOARCH = s.Value
		}
	}
}

// textStart returns the address the pclntab's entry offsets are relative
// to: the header's textStart (Go 1.18 to 1.25), else runtime.text from the
// module data, else the .text section's address.
func (b *Binary) textStart() (uint64, error) {
	if b.tab.textHdr != 0 {
		return b.tab.textHdr, nil
	}
	if b.md.text != 0 {
		return b.md.text, nil
	}
	if s := b.im.f.Section(".text"); s != nil {
		return s.Addr, nil
	}
	return 0, fmt.Errorf("text start unknown: no text start in the pclntab header, no module data and no .text section: %w", ErrCorrupt)
}

// FileOffset converts a link-time virtual address to a file offset using
// the ELF PT_LOAD program headers.
func (b *Binary) FileOffset(pc uint64) (uint64, error) {
	off, ok := b.im.fileOffset(pc)
	if !ok {
		return 0, fmt.Errorf("address %#x of %s is not in a loaded segment of the file", pc, b.Path)
	}
	return off, nil
}

// FuncAt returns the function containing pc, or nil.
func (b *Binary) FuncAt(pc uint64) *Func {
	i := b.funcIndex(pc)
	if i < 0 {
		return nil
	}
	return &b.Funcs[i]
}

// funcIndex returns the index in Funcs of the function containing pc, or -1.
func (b *Binary) funcIndex(pc uint64) int {
	i := sort.Search(len(b.Funcs), func(i int) bool { return b.Funcs[i].Entry > pc }) - 1
	if i < 0 || pc >= b.Funcs[i].End {
		return -1
	}
	return i
}

// indexOf returns the index in Funcs of f (found by its entry), or an error.
func (b *Binary) indexOf(f *Func) (int, error) {
	if f == nil {
		return -1, fmt.Errorf("nil function")
	}
	i := b.funcIndex(f.Entry)
	if i < 0 || b.Funcs[i].Entry != f.Entry {
		return -1, fmt.Errorf("%s at %#x is not a function of %s", f.Name, f.Entry, b.Path)
	}
	return i, nil
}
