package binfo

// pcRange says that the value of a pc-value table is val for the pc
// offsets (from the function's entry) in [lo, hi).
type pcRange struct {
	lo, hi uint32
	val    int32
}

// maxPCRanges caps the ranges decoded from one table: a table cannot have
// more ranges than its function has bytes, and no Go function is this big.
const maxPCRanges = 1 << 22

// decodePCValue decodes the pc-value table at off in pctab for a function
// of size bytes, appending its ranges to buf[:0]. The encoding
// (runtime.step) is a sequence of (value delta, pc delta) varint pairs,
// the value starting at -1 and the first pair allowed a zero delta. It
// stops at the table's end, at the function's end or at a malformed byte,
// so it never reads out of bounds.
func decodePCValue(buf []pcRange, pctab []byte, off uint32, size uint64, quantum uint32) []pcRange {
	buf = buf[:0]
	if off == 0 || uint64(off) >= uint64(len(pctab)) {
		return buf
	}
	p := pctab[off:]
	val := int32(-1)
	var pc uint64
	for first := true; len(buf) < maxPCRanges; first = false {
		uvdelta, n := uvarint(p)
		if n <= 0 || (uvdelta == 0 && !first) {
			break
		}
		p = p[n:]
		val += int32(-(uvdelta & 1) ^ (uvdelta >> 1))
		pcdelta, n := uvarint(p)
		if n <= 0 {
			break
		}
		p = p[n:]
		lo := pc
		pc += uint64(pcdelta) * uint64(quantum)
		if pc > size {
			pc = size
		}
		if pc > lo {
			buf = append(buf, pcRange{lo: uint32(lo), hi: uint32(pc), val: val})
		}
		if pc >= size {
			break
		}
	}
	return buf
}

// uvarint decodes a little-endian base-128 uint32 as the runtime's
// readvarint does. n is 0 when p ends early or the value overflows.
func uvarint(p []byte) (v uint32, n int) {
	var shift uint
	for i, b := range p {
		if shift >= 32 {
			return 0, 0
		}
		v |= uint32(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// valueAt returns the value of the decoded table at pc offset off, or -1.
func valueAt(rs []pcRange, off uint32) int32 {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case off < rs[m].lo:
			hi = m
		case off >= rs[m].hi:
			lo = m + 1
		default:
			return rs[m].val
		}
	}
	return -1
}
