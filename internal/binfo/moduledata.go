package binfo

import "debug/elf"

// moduledata holds the fields of the runtime's firstmoduledata that reach
// needs: the text base the pclntab's entry offsets are relative to, and
// the base of the funcdata offsets (go:func.*).
type moduledata struct {
	text, gofunc uint64
}

// Word indexes in runtime.moduledata (runtime/symtab.go). The layout up to
// text is the same in Go 1.18 to 1.26; Go 1.20 added covctrs/ecovctrs
// before end, moving gofunc from word 38 to word 40.
const (
	mdFuncnametab = 1
	mdText        = 22
	mdGofunc118   = 38
	mdGofunc120   = 40
	mdWords120    = 41
)

// findModuledata finds runtime.firstmoduledata: Go 1.26 keeps it in its
// own .go.module section; older toolchains put it in .noptrdata (or .data).
// It is recognized by its first fields pointing at the pclntab header and
// its function name table. Non-PIE and PIE Go binaries alike hold these
// pointers' link-time values in the file.
func findModuledata(im *image, t *pclntab) (moduledata, bool) {
	want0 := t.addr
	funcnameAddr := t.addr + t.funcnameOff
	gofuncWord := mdGofunc118
	if t.magic == magic120 {
		gofuncWord = mdGofunc120
	}
	need := uint64(8 * mdWords120)
	var order []*elf.Section
	for _, name := range []string{".go.module", ".noptrdata", ".data", ".data.rel.ro"} {
		if s := im.f.Section(name); s != nil {
			order = append(order, s)
		}
	}
	for _, s := range order {
		if s.Type == elf.SHT_NOBITS || s.Size < need {
			continue
		}
		data, err := im.sectionData(s)
		if err != nil {
			continue
		}
		for i := 0; i+int(need) <= len(data); i += 8 {
			if le.Uint64(data[i:]) != want0 || le.Uint64(data[i+8*mdFuncnametab:]) != funcnameAddr {
				continue
			}
			w := func(k int) uint64 { return le.Uint64(data[i+8*k:]) }
			return moduledata{text: w(mdText), gofunc: w(gofuncWord)}, true
		}
	}
	return moduledata{}, false
}
