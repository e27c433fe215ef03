package binfo

// Frames symbolizes pc into its logical frames, innermost first, expanding
// inlined calls as runtime.CallersFrames does: the innermost frame has the
// file and line of pc itself, and each outer frame the position of the
// inlined call it made. Symbolize a return address as pc-1, as
// runtime.CallersFrames does. Frames returns nil for a pc outside every
// function.
//
// Unlike runtime tracebacks, Frames keeps inlined compiler-generated
// wrapper frames (funcID wrapper), which the runtime elides.
func (b *Binary) Frames(pc uint64) []Frame {
	fi := b.funcIndex(pc)
	if fi < 0 {
		return nil
	}
	fn := &b.Funcs[fi]
	r, ok := b.tab.fn(b.funcOff[fi])
	if !ok {
		return []Frame{{Function: fn.Name, File: "?"}}
	}
	off := uint32(pc - fn.Entry)
	size := fn.End - fn.Entry
	file, line := "?", 0
	fileno := pcValueAt(b.tab.pctab, r.pcfile(), off, size, b.tab.minLC)
	ln := pcValueAt(b.tab.pctab, r.pcln(), off, size, b.tab.minLC)
	if fileno >= 0 && ln >= 0 {
		file, line = b.tab.file(r.cuOffset(), fileno), int(ln)
	}
	ix := int32(-1)
	if len(fn.Inlines) > 0 {
		ix = pcValueAt(b.tab.pctab, r.pcdata(pcdataInlTreeIndex), off, size, b.tab.minLC)
	}
	var frames []Frame
	for depth := 0; ix >= 0 && int(ix) < len(fn.Inlines) && depth < len(fn.Inlines); depth++ {
		in := fn.Inlines[ix]
		frames = append(frames, Frame{Function: in.Func, File: file, Line: line, Inlined: true})
		file, line = in.CallFile, in.CallLine
		ix = int32(in.Parent)
	}
	return append(frames, Frame{Function: fn.Name, File: file, Line: line})
}

// pcValueAt evaluates one pc-value table at pc offset target without
// allocating; see decodePCValue for the encoding. It returns -1 when the
// table has no value there.
func pcValueAt(pctab []byte, off, target uint32, size uint64, quantum uint32) int32 {
	if off == 0 || uint64(off) >= uint64(len(pctab)) {
		return -1
	}
	p := pctab[off:]
	val := int32(-1)
	var pc uint64
	for first := true; ; first = false {
		uvdelta, n := uvarint(p)
		if n <= 0 || (uvdelta == 0 && !first) {
			return -1
		}
		p = p[n:]
		val += int32(-(uvdelta & 1) ^ (uvdelta >> 1))
		pcdelta, n := uvarint(p)
		if n <= 0 {
			return -1
		}
		p = p[n:]
		pc += uint64(pcdelta) * uint64(quantum)
		if uint64(target) < pc {
			return val
		}
		if pc >= size {
			return -1
		}
	}
}
