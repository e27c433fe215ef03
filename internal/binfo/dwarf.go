package binfo

import (
	"debug/dwarf"
	"errors"
	"fmt"
)

// ErrNoDWARF reports a binary without DWARF debug information, such as
// one built with -ldflags=-w.
var ErrNoDWARF = errors.New("no DWARF debug information")

// DWARFInline is one inlined copy as the binary's DWARF describes it (a
// DW_TAG_inlined_subroutine with code).
type DWARFInline struct {
	// Caller is the function whose code holds the copy, as in Funcs.
	Caller string
	// Func is the inlined function, named as the runtime names it.
	Func string
	// CallFile and CallLine are where the inlined call was written.
	CallFile string
	CallLine int
	// Ranges are the copy's code, link-time addresses.
	Ranges []Range
}

// DWARFInlines reads every inlined copy from the DWARF debug information.
// The pclntab's inline trees (Func.Inlines) hold the same copies and work
// on stripped binaries too; DWARF serves to cross-check them. It reads and
// decompresses the DWARF sections on each call.
func (b *Binary) DWARFInlines() ([]DWARFInline, error) {
	if !b.im.hasSection(".debug_info", ".zdebug_info") {
		return nil, fmt.Errorf("inlined calls of %s: %w", b.Path, ErrNoDWARF)
	}
	d, err := b.im.f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("inlined calls of %s: read DWARF: %v: %w", b.Path, err, ErrCorrupt)
	}
	names := map[dwarf.Offset]string{}
	type pending struct {
		in     DWARFInline
		origin dwarf.Offset
	}
	var found []pending
	var files []*dwarf.LineFile
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("inlined calls of %s: read DWARF: %v: %w", b.Path, err, ErrCorrupt)
		}
		if e == nil {
			break
		}
		switch e.Tag {
		case dwarf.TagCompileUnit:
			files = nil
			if lr, err := d.LineReader(e); err == nil && lr != nil {
				files = lr.Files()
			}
		case dwarf.TagSubprogram:
			if n, ok := e.Val(dwarf.AttrName).(string); ok {
				names[e.Offset] = n
			}
		case dwarf.TagInlinedSubroutine:
			origin, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
			rs, err := d.Ranges(e)
			if err != nil || len(rs) == 0 {
				continue
			}
			in := DWARFInline{}
			for _, rg := range rs {
				in.Ranges = append(in.Ranges, Range{Lo: rg[0], Hi: rg[1]})
			}
			if f := b.FuncAt(rs[0][0]); f != nil {
				in.Caller = f.Name
			}
			if line, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
				in.CallLine = int(line)
			}
			if fi, ok := e.Val(dwarf.AttrCallFile).(int64); ok && fi >= 0 && fi < int64(len(files)) && files[fi] != nil {
				in.CallFile = files[fi].Name
			}
			found = append(found, pending{in, origin})
		}
	}
	out := make([]DWARFInline, len(found))
	for i, p := range found {
		p.in.Func = nameForPrint(names[p.origin])
		out[i] = p.in
	}
	return out, nil
}
