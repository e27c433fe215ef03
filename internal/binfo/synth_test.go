package binfo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// synthELF builds a tiny amd64 Go binary by hand, laid out as Go 1.26
// writes one: zero text start in the pclntab header, runtime.firstmoduledata
// in .go.module, funcdata inside the pclntab. It has two functions:
//
//	main.main at 0x401000: CMP RSP,[R14+16]; JBE; PUSH RBP; MOV RBP,RSP;
//	                       NOP (main.leaf inlined, line 20); POP RBP; RET
//	main.leaf at 0x401010: RET (frameless)
//
// It seeds the fuzz target and tests the whole decoder on known bytes.
func synthELF() []byte {
	const (
		base     = 0x400000
		textOff  = 0x1000
		textAddr = base + textOff
	)
	main := []byte{
		0x49, 0x3b, 0x66, 0x10, // CMP RSP, [R14+16]
		0x76, 0x08, // JBE +8 (to the RET: a stand-in for morestack)
		0x55,             // PUSH RBP        (offset 6)
		0x48, 0x89, 0xe5, // MOV RBP, RSP    (offset 7)
		0x90,       // NOP: the inlined main.leaf (offset 10)
		0x5d,       // POP RBP           (offset 11)
		0xc3,       // RET               (offset 12)
		0xc3,       // RET               (offset 13)
		0xcc, 0xcc, // padding
	}
	leaf := []byte{0xc3}
	text := append(append([]byte{}, main...), leaf...)

	// pclntab tables.
	funcnames := []byte("\x00main.main\x00main.leaf\x00")
	const nameMain, nameLeaf = 1, 11
	filetab := []byte("/src/main.go\x00")
	cutab := le32(0)
	pctab := []byte{0} // offset 0 means "no table"
	table := func(pairs ...int) uint32 {
		off := uint32(len(pctab))
		for _, v := range pairs {
			pctab = binary.AppendUvarint(pctab, uint64(v))
		}
		pctab = append(pctab, 0)
		return off
	}
	zz := func(d int) int { return int(uint32(d<<1) ^ uint32(d>>31)) }
	// main.main: SP delta 0 until after the PUSH (offset 7), then 8.
	mainSP := table(zz(1), 7, zz(8), 9)
	mainFile := table(zz(1), 16)
	mainLine := table(zz(11), 10, zz(10), 1, zz(-10), 5) // line 10, 20 at the NOP, 10
	mainInl := table(zz(0), 10, zz(1), 1, zz(-1), 5)     // -1, 0 at the NOP, -1
	leafSP := table(zz(1), 1)
	leafFile := table(zz(1), 1)
	leafLine := table(zz(31), 1) // line 30

	const hdrSize = 72
	offNames := uint64(hdrSize)
	offCU := offNames + uint64(len(funcnames))
	offFile := offCU + uint64(len(cutab))
	offPC := offFile + uint64(len(filetab))
	offPcln := (offPC + uint64(len(pctab)) + 7) &^ 7

	// functab: 2 functions + end entry, then the _func records.
	var ft bytes.Buffer
	rec := func(entryOff, nameOff, sp, file, ln uint32, pcdata, funcdata []uint32) []byte {
		var b []byte
		for _, v := range []uint32{entryOff, nameOff, 0, 0, sp, file, ln, uint32(len(pcdata)), 0, 0} {
			b = append(b, le32(v)...)
		}
		b = append(b, 0, 0, 0, byte(len(funcdata)))
		for _, v := range append(pcdata, funcdata...) {
			b = append(b, le32(v)...)
		}
		return b
	}
	never := ^uint32(0)
	mainRec := rec(0, nameMain, mainSP, mainFile, mainLine, []uint32{0, 0, mainInl}, []uint32{never, never, never, 0})
	leafRec := rec(16, nameLeaf, leafSP, leafFile, leafLine, nil, nil)
	ftabSize := uint32(3 * 8)
	mainAt, leafAt := ftabSize, ftabSize+uint32(len(mainRec))
	for _, v := range []uint32{0, mainAt, 16, leafAt, 17, 0} {
		ft.Write(le32(v))
	}
	ft.Write(mainRec)
	ft.Write(leafRec)
	gofuncOff := uint64(ft.Len())
	// Inline tree of main.main: main.leaf called at offset 7 (parent -1).
	ft.Write([]byte{0, 0, 0, 0})
	ft.Write(le32(nameLeaf))
	ft.Write(le32(7))
	ft.Write(le32(30))

	var tab bytes.Buffer
	tab.Write(le32(magic120))
	tab.Write([]byte{0, 0, 1, 8})
	for _, v := range []uint64{2, 1, 0, offNames, offCU, offFile, offPC, offPcln} {
		tab.Write(le64(v))
	}
	tab.Write(funcnames)
	tab.Write(cutab)
	tab.Write(filetab)
	tab.Write(pctab)
	for uint64(tab.Len()) < offPcln {
		tab.WriteByte(0)
	}
	tab.Write(ft.Bytes())

	// Build information, inline format (flags 2).
	var bi bytes.Buffer
	bi.WriteString("\xff Go buildinf:")
	bi.Write([]byte{8, 2})
	bi.Write(make([]byte, 16))
	vers := "go1.26.8"
	mod := "path\texample.com/synth\nmod\texample.com/synth\t(devel)\t\ndep\texample.com/dep\tv1.2.3\th1:abc=\n=>\texample.com/fork\tv1.2.4\th1:def=\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\n"
	mod = string(make([]byte, 16)) + mod + string(make([]byte, 16))
	bi.Write(binary.AppendUvarint(nil, uint64(len(vers))))
	bi.WriteString(vers)
	bi.Write(binary.AppendUvarint(nil, uint64(len(mod))))
	bi.WriteString(mod)

	// File layout: headers, then sections from textOff on.
	type sect struct {
		name  string
		typ   uint32
		flags uint64
		data  []byte
		off   uint64
	}
	secs := []*sect{
		{name: ".text", typ: 1, flags: 6, data: text},
		{name: ".gopclntab", typ: 1, flags: 2, data: tab.Bytes()},
		{name: ".go.buildinfo", typ: 1, flags: 3, data: bi.Bytes()},
		{name: ".go.module", typ: 1, flags: 3},
	}
	off := uint64(textOff)
	for _, s := range secs {
		off = (off + 31) &^ 31
		s.off = off
		if s.name == ".go.module" {
			pclnAddr := base + secs[1].off
			md := make([]uint64, mdWords120)
			md[0] = pclnAddr
			md[mdFuncnametab] = pclnAddr + offNames
			md[mdText] = textAddr
			md[mdGofunc120] = pclnAddr + offPcln + gofuncOff
			for _, w := range md {
				s.data = append(s.data, le64(w)...)
			}
		}
		off += uint64(len(s.data))
	}
	shstr := []byte("\x00")
	names := map[string]uint32{}
	for _, s := range append(secs, &sect{name: ".shstrtab"}) {
		names[s.name] = uint32(len(shstr))
		shstr = append(append(shstr, s.name...), 0)
	}
	shstrOff := off
	off += uint64(len(shstr))
	shOff := (off + 7) &^ 7
	loadEnd := shstrOff // the loaded image ends before the section names

	out := make([]byte, shOff+uint64(64*(len(secs)+2)))
	copy(out, "\x7fELF\x02\x01\x01")
	w16 := func(at int, v uint16) { binary.LittleEndian.PutUint16(out[at:], v) }
	w32 := func(at int, v uint32) { binary.LittleEndian.PutUint32(out[at:], v) }
	w64 := func(at int, v uint64) { binary.LittleEndian.PutUint64(out[at:], v) }
	w16(16, 2)  // ET_EXEC
	w16(18, 62) // EM_X86_64
	w32(20, 1)  // EV_CURRENT
	w64(24, textAddr)
	w64(32, 64)    // phoff
	w64(40, shOff) // shoff
	w16(52, 64)
	w16(54, 56)
	w16(56, 1)
	w16(58, 64)
	w16(60, uint16(len(secs)+2))
	w16(62, uint16(len(secs)+1)) // shstrndx
	// One PT_LOAD maps the file from 0 at base.
	w32(64, 1)
	w32(68, 7)
	w64(64+8, 0)
	w64(64+16, base)
	w64(64+24, base)
	w64(64+32, loadEnd)
	w64(64+40, loadEnd)
	w64(64+48, 0x1000)
	for i, s := range secs {
		copy(out[s.off:], s.data)
		h := int(shOff) + 64*(i+1)
		w32(h, names[s.name])
		w32(h+4, s.typ)
		w64(h+8, s.flags)
		w64(h+16, base+s.off)
		w64(h+24, s.off)
		w64(h+32, uint64(len(s.data)))
		w64(h+48, 1)
	}
	copy(out[shstrOff:], shstr)
	h := int(shOff) + 64*(len(secs)+1)
	w32(h, names[".shstrtab"])
	w32(h+4, 3)
	w64(h+24, shstrOff)
	w64(h+32, uint64(len(shstr)))
	w64(h+48, 1)
	return out
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// TestSynthetic opens the hand-made binary and checks every result against
// the bytes synthELF wrote.
func TestSynthetic(t *testing.T) {
	data := synthELF()
	b, err := NewFile(bytes.NewReader(data), int64(len(data)), "synth")
	if err != nil {
		t.Fatal(err)
	}
	if b.GoVersion != "go1.26.8" || b.Main.Path != "example.com/synth" || b.GOOS != "linux" || b.GOARCH != "amd64" {
		t.Errorf("build info: %s %s %s/%s", b.GoVersion, b.Main.Path, b.GOOS, b.GOARCH)
	}
	if len(b.Deps) != 1 || b.Deps[0].Replace == nil || b.Deps[0].Replace.Path != "example.com/fork" {
		t.Errorf("deps: %+v", b.Deps)
	}
	if !b.Stripped || b.PIE {
		t.Errorf("stripped %v, PIE %v; want true, false", b.Stripped, b.PIE)
	}
	got := fmt.Sprintf("%+v", b.Funcs)
	want := "[{Name:main.main Entry:4198400 End:4198416 Offset:4096 Inlines:[{Func:main.leaf Parent:-1 CallFile:/src/main.go CallLine:10 CallPC:4198407}]} {Name:main.leaf Entry:4198416 End:4198417 Offset:4112 Inlines:[]}]"
	if got != want {
		t.Errorf("Funcs =\n\t%s\nwant\n\t%s", got, want)
	}
	main, leaf := &b.Funcs[0], &b.Funcs[1]
	if s, err := b.EntrySite(main); err != nil || s != (Site{Kind: SitePushBP, PC: 0x401006, Offset: 0x1006}) {
		t.Errorf("EntrySite(main.main) = %+v, %v", s, err)
	}
	if s, err := b.EntrySite(leaf); err != nil || s != (Site{Kind: SiteEntry, PC: 0x401010, Offset: 0x1010}) {
		t.Errorf("EntrySite(main.leaf) = %+v, %v", s, err)
	}
	// The copy is the NOP at main.main+10, entered by falling through from
	// the caller's MOV (the call's inline mark, the tree entry's
	// parentPc, at main.main+7).
	if s, err := b.InlineSites(main, 0); err != nil || fmt.Sprint(s) != fmt.Sprint([]Site{{Kind: SiteInline, PC: 0x40100a, Offset: 0x100a, Call: 0x40100a}}) {
		t.Errorf("InlineSites(main.main, 0) = %+v, %v", s, err)
	}
	wantFrames := "[{main.leaf /src/main.go 20 true} {main.main /src/main.go 10 false}]"
	if f := b.Frames(0x40100a); fmt.Sprint(f) != wantFrames {
		t.Errorf("Frames(0x40100a) = %v, want %s", f, wantFrames)
	}
	if f := b.FuncAt(0x401010); f == nil || f.Name != "main.leaf" {
		t.Errorf("FuncAt(0x401010) = %v", f)
	}
}
