//go:build linux

package keeper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The keeper protocol's messages travel in a fixed little-endian layout:
// integers at their width, strings and slices as a u32 count and their
// elements, an optional error as a presence byte and the error. A
// general-purpose encoding (gob) compiled its codecs again for every frame
// and cost more than the links it asked for.

const (
	wireNotSupported = 1 << iota
	wireNotExist
)

// errWire reports a message that does not decode.
var errWire = errors.New("malformed keeper message")

type wireWriter struct{ b []byte }

func (w *wireWriter) u8(v uint8)   { w.b = append(w.b, v) }
func (w *wireWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *wireWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }

func (w *wireWriter) str(s string) {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
}

func (w *wireWriter) u64s(vs []uint64) {
	w.u32(uint32(len(vs)))
	for _, v := range vs {
		w.u64(v)
	}
}

func (w *wireWriter) err(e *wireError) {
	if e == nil {
		w.u8(0)
		return
	}
	w.u8(1)
	w.str(e.Msg)
	w.u64(uint64(e.Errno))
	var flags uint8
	if e.NotSupported {
		flags |= wireNotSupported
	}
	if e.NotExist {
		flags |= wireNotExist
	}
	w.u8(flags)
}

// wireReader decodes a message; the first error sticks, and reads after it
// return zero values.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: %d bytes wanted, %d left", errWire, n, len(r.b))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *wireReader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *wireReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *wireReader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// count reads a count of elements of at least size bytes each, refusing
// one the rest of the message cannot hold.
func (r *wireReader) count(size int) int {
	n := int(r.u32())
	if r.err == nil && n > len(r.b)/size {
		r.err = fmt.Errorf("%w: %d elements of %d bytes in %d bytes", errWire, n, size, len(r.b))
		return 0
	}
	return n
}

func (r *wireReader) str() string { return string(r.take(r.count(1))) }

func (r *wireReader) u64s() []uint64 {
	n := r.count(8)
	if n == 0 {
		return nil
	}
	vs := make([]uint64, n)
	for i := range vs {
		vs[i] = r.u64()
	}
	return vs
}

func (r *wireReader) werr() *wireError {
	switch r.u8() {
	case 0:
		return nil
	case 1:
	default:
		if r.err == nil {
			r.err = fmt.Errorf("%w: bad error marker", errWire)
		}
		return nil
	}
	e := &wireError{Msg: r.str(), Errno: uintptr(r.u64())}
	flags := r.u8()
	if flags&^(wireNotSupported|wireNotExist) != 0 && r.err == nil {
		r.err = fmt.Errorf("%w: unknown error flags %#x", errWire, flags)
	}
	e.NotSupported = flags&wireNotSupported != 0
	e.NotExist = flags&wireNotExist != 0
	return e
}

// end fails unless the whole message was read.
func (r *wireReader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%w: %d bytes left over", errWire, len(r.b))
	}
	return r.err
}

// appendRequest appends req's encoding to b.
func appendRequest(b []byte, req request) []byte {
	w := wireWriter{b}
	w.u64(req.ID)
	w.u8(req.Op)
	w.u8(req.Prog)
	w.u32(uint32(len(req.Attach)))
	for _, a := range req.Attach {
		w.u32(a.ID)
		w.u8(a.Prog)
		w.str(a.Path)
		w.u64(uint64(int64(a.PID)))
		w.u64s(a.Offsets)
		w.u64s(a.Cookies)
	}
	w.u32(uint32(len(req.Close)))
	for _, id := range req.Close {
		w.u32(id)
	}
	return w.b
}

// decodeRequest decodes a request that appendRequest encoded.
func decodeRequest(b []byte) (request, error) {
	r := wireReader{b: b}
	req := request{ID: r.u64(), Op: r.u8(), Prog: r.u8()}
	// An attach takes at least 25 bytes: ID (4), Prog (1), path count
	// (4), PID (8), offset and cookie counts (4 each).
	if n := r.count(25); n > 0 {
		req.Attach = make([]attachRequest, n)
		for i := range req.Attach {
			a := &req.Attach[i]
			a.ID = r.u32()
			a.Prog = r.u8()
			a.Path = r.str()
			pid := int64(r.u64())
			if pid < math.MinInt32 || pid > math.MaxInt32 {
				if r.err == nil {
					r.err = fmt.Errorf("%w: process ID %d", errWire, pid)
				}
			}
			a.PID = int(pid)
			a.Offsets = r.u64s()
			a.Cookies = r.u64s()
		}
	}
	if n := r.count(4); n > 0 {
		req.Close = make([]uint32, n)
		for i := range req.Close {
			req.Close[i] = r.u32()
		}
	}
	if err := r.end(); err != nil {
		return request{}, err
	}
	return req, nil
}

// appendReply appends rep's encoding to b.
func appendReply(b []byte, rep response) []byte {
	w := wireWriter{b}
	w.u64(rep.ID)
	w.err(rep.Err)
	// A nil Errs (no attach results) and an empty one differ to the
	// engine: count+1, 0 for nil.
	if rep.Errs == nil {
		w.u32(0)
	} else {
		w.u32(uint32(len(rep.Errs)) + 1)
	}
	for _, e := range rep.Errs {
		w.err(e.Err)
		w.u64(uint64(int64(e.Site)))
	}
	return w.b
}

// decodeReply decodes a reply that appendReply encoded.
func decodeReply(b []byte) (response, error) {
	r := wireReader{b: b}
	rep := response{ID: r.u64(), Err: r.werr()}
	n := int(r.u32())
	if n > 0 {
		n--
		// A result takes at least 9 bytes: its error marker and site.
		if r.err == nil && n > len(r.b)/9 {
			r.err = fmt.Errorf("%w: %d attach results in %d bytes", errWire, n, len(r.b))
		}
		if r.err == nil {
			rep.Errs = make([]attachResult, n)
			for i := range rep.Errs {
				rep.Errs[i].Err = r.werr()
				rep.Errs[i].Site = int(int64(r.u64()))
			}
		}
	}
	if err := r.end(); err != nil {
		return response{}, err
	}
	return rep, nil
}
