package binfo

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// loadFuncs builds Funcs from the pclntab's function table, with each
// function's inline tree. Decoding the inline trees is most of the work of
// Open on a large binary, so the table is split in chunks decoded in
// parallel.
func (b *Binary) loadFuncs() error {
	t := b.tab
	text, err := b.textStart()
	if err != nil {
		return err
	}
	// parsePclntab checked that the table has room for nfunc functions;
	// the table's bytes were charged as they were read.
	if err := b.im.charge(uint64(t.nfunc) * uint64(unsafe.Sizeof(Func{})+4)); err != nil {
		return err
	}
	b.Funcs = make([]Func, t.nfunc)
	b.funcOff = make([]uint32, t.nfunc)
	gf := b.gofuncData()
	// Inline trees of different functions do not overlap: together they
	// have no more entries than the funcdata area has room for. Functions
	// sharing one tree would multiply its cost.
	var inlLeft atomic.Int64
	inlLeft.Store(int64(len(gf.data) / inlEntry120))

	workers := min(runtime.GOMAXPROCS(0), 4, max(1, t.nfunc/2048))
	chunk := (t.nfunc + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, t.nfunc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = b.loadFuncRange(text, gf, &inlLeft, lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadFuncRange fills Funcs[lo:hi], taking the inline entries it decodes
// from inlLeft.
func (b *Binary) loadFuncRange(text uint64, gf funcData, inlLeft *atomic.Int64, lo, hi int) error {
	t := b.tab
	var d inlDecoder
	prevEntry := uint64(0)
	if lo > 0 {
		prevOff, _ := t.ftab(lo - 1)
		prevEntry = text + uint64(prevOff)
	}
	for i := lo; i < hi; i++ {
		entryOff, funcOff := t.ftab(i)
		nextOff, _ := t.ftab(i + 1)
		r, ok := t.fn(funcOff)
		if !ok {
			return fmt.Errorf("function %d: record at %#x outside the pclntab: %w", i, funcOff, ErrCorrupt)
		}
		entry := text + uint64(entryOff)
		end := text + uint64(nextOff)
		if nextOff < entryOff || entry < prevEntry {
			return fmt.Errorf("function %d: entries out of order in the pclntab: %w", i, ErrCorrupt)
		}
		prevEntry = entry
		fn := Func{
			Name:  nameForPrint(t.name(r.nameOff())),
			Entry: entry,
			End:   end,
		}
		fn.Offset, _ = b.im.fileOffset(entry)
		if gf.ok() {
			fn.Inlines = d.decode(t, r, gf, entry, end-entry)
			if n := len(fn.Inlines); n > 0 {
				if inlLeft.Add(-int64(n)) < 0 {
					return fmt.Errorf("function %d: inline trees claim more entries than the funcdata holds (%d bytes): %w", i, len(gf.data), ErrCorrupt)
				}
				if err := b.im.charge(uint64(n) * uint64(unsafe.Sizeof(Inline{}))); err != nil {
					return err
				}
			}
		}
		b.Funcs[i] = fn
		b.funcOff[i] = funcOff
	}
	return nil
}

// funcData is the bytes of the funcdata area (go:func.*) reach reads
// inline trees from: from gofunc to the end of the section holding it.
type funcData struct {
	base uint64
	data []byte
}

func (g funcData) ok() bool { return g.data != nil }

// slice returns n bytes at offset off from gofunc, or nil.
func (g funcData) slice(off, n uint64) []byte {
	if off > uint64(len(g.data)) || n > uint64(len(g.data))-off {
		return nil
	}
	return g.data[off : off+n]
}

// gofuncData returns the funcdata area, or an empty funcData when the
// module data was not found (then no inline trees are read).
func (b *Binary) gofuncData() funcData {
	gofunc := b.md.gofunc
	if gofunc == 0 {
		return funcData{}
	}
	// Go 1.26 places go:func.* inside the pclntab, already in memory.
	t := b.tab
	if gofunc >= t.addr && gofunc-t.addr >= t.pclnOff {
		if start := gofunc - t.addr - t.pclnOff; start < uint64(len(t.functab)) {
			return funcData{base: gofunc, data: t.functab[start:]}
		}
	}
	s := b.im.sectionAt(gofunc)
	if s == nil {
		return funcData{}
	}
	data, err := b.im.sectionData(s)
	if err != nil {
		return funcData{}
	}
	return funcData{base: gofunc, data: data[gofunc-s.Addr:]}
}

// inlDecoder decodes inline trees, reusing its buffers across functions.
type inlDecoder struct {
	inl, file, line []pcRange
}

// Inline tree entry sizes (runtime.inlinedCall).
const (
	inlEntry118 = 20 // {parent int16, funcID uint8, _ byte, file, line, nameOff, parentPc int32}
	inlEntry120 = 16 // {funcID uint8, _ [3]byte, nameOff, parentPc, startLine int32}
)

// decode returns the inline tree of the function r, of size bytes. The
// number of entries is one more than the largest InlTreeIndex value: every
// entry with code, and every parent of one (its parentPc carries its
// index), appears in that table.
func (d *inlDecoder) decode(t *pclntab, r funcRec, gf funcData, entry, size uint64) []Inline {
	treeOff, ok := r.funcdata(funcdataInlTree)
	if !ok {
		return nil
	}
	d.inl = decodePCValue(d.inl, t.pctab, r.pcdata(pcdataInlTreeIndex), size, t.minLC)
	maxIdx := int32(-1)
	for _, rg := range d.inl {
		maxIdx = max(maxIdx, rg.val)
	}
	if maxIdx < 0 {
		return nil
	}
	n := uint64(maxIdx) + 1
	esize := uint64(inlEntry120)
	if t.magic == magic118 {
		esize = inlEntry118
	}
	tree := gf.slice(uint64(treeOff), n*esize)
	if tree == nil {
		return nil
	}
	if t.magic != magic118 {
		d.file = decodePCValue(d.file, t.pctab, r.pcfile(), size, t.minLC)
		d.line = decodePCValue(d.line, t.pctab, r.pcln(), size, t.minLC)
	}
	out := make([]Inline, n)
	for k := range out {
		e := tree[uint64(k)*esize:]
		var in Inline
		if t.magic == magic118 {
			in.Parent = int(int16(le.Uint16(e)))
			in.CallFile = t.file(r.cuOffset(), int32(le.Uint32(e[4:])))
			in.CallLine = int(int32(le.Uint32(e[8:])))
			in.Func = nameForPrint(t.name(le.Uint32(e[12:])))
			if pc := uint64(le.Uint32(e[16:])); pc < size {
				in.CallPC = entry + pc
			}
		} else {
			in.Func = nameForPrint(t.name(le.Uint32(e[4:])))
			parentPC := le.Uint32(e[8:])
			in.Parent = int(valueAt(d.inl, parentPC))
			in.CallFile = t.file(r.cuOffset(), valueAt(d.file, parentPC))
			in.CallLine = int(valueAt(d.line, parentPC))
			if uint64(parentPC) < size {
				in.CallPC = entry + uint64(parentPC)
			}
		}
		if in.Parent < -1 || in.Parent >= len(out) || in.Parent == k {
			in.Parent = -1
		}
		out[k] = in
	}
	return out
}
