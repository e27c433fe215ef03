package binfo

import (
	"fmt"
	"slices"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestCopyEntries runs the entry rule of InlineSites over hand-made
// instruction streams. Instruction k is at offset k; "in" lists the
// offsets in the copy.
func TestCopyEntries(t *testing.T) {
	const (
		fall = iota // falls through
		jmp         // unconditional direct jump
		jcc         // conditional jump
		ret         // return (does not fall through)
		ijmp        // indirect jump
	)
	type op struct {
		kind   int
		target int
	}
	tests := []struct {
		name string
		ops  []op
		in   []uint32
		want []uint32
	}{
		{"contiguous copy entered by fall-through", []op{{fall, 0}, {fall, 0}, {fall, 0}, {ret, 0}}, []uint32{1, 2}, []uint32{1}},
		{"copy at the function's first instruction", []op{{fall, 0}, {fall, 0}, {ret, 0}}, []uint32{0}, []uint32{0}},
		{"copy after a jump is only entered by the jump", []op{{jmp, 3}, {fall, 0}, {ret, 0}, {jmp, 1}}, []uint32{1, 2}, []uint32{1}},
		{"split copy: second range entered by a jump from the caller", []op{
			{fall, 0}, // 0 caller
			{fall, 0}, // 1 copy
			{jcc, 6},  // 2 copy, leaves to the caller
			{ret, 0},  // 3 caller
			{fall, 0}, // 4 caller
			{jmp, 7},  // 5 caller jumps into the copy's second range
			{ret, 0},  // 6 caller
			{fall, 0}, // 7 copy
			{ret, 0},  // 8 copy
		}, []uint32{1, 2, 7, 8}, []uint32{1, 7}},
		{"backward branch inside the copy is not an entry", []op{{fall, 0}, {fall, 0}, {jcc, 1}, {ret, 0}}, []uint32{1, 2}, []uint32{1}},
		{"out-of-line path reached from inside the copy is not an entry", []op{
			{fall, 0}, {jcc, 4}, {fall, 0}, {ret, 0}, {fall, 0}, {ret, 0},
		}, []uint32{1, 2, 4, 5}, []uint32{1}},
		{"caller code between two parts of the copy re-enters it", []op{{fall, 0}, {fall, 0}, {fall, 0}, {fall, 0}, {ret, 0}}, []uint32{1, 3}, []uint32{1, 3}},
		{"jump table outside the copy", []op{{ijmp, 0}, {fall, 0}, {ret, 0}, {fall, 0}, {ret, 0}}, []uint32{3, 4}, []uint32{3}},
		{"no code", []op{{fall, 0}, {ret, 0}}, nil, []uint32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			insts := make([]inst, len(tt.ops))
			for k, o := range tt.ops {
				insts[k] = inst{off: uint32(k), len: 1, target: -1, fallsThrough: o.kind == fall || o.kind == jcc}
				if o.kind == jmp || o.kind == jcc {
					insts[k].target = int64(o.target)
				}
				insts[k].indirectJump = o.kind == ijmp
			}
			got := copyEntries(insts, func(off uint32) bool { return slices.Contains(tt.in, off) })
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("entries = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestInlineSites checks every inlined copy of the fixture's binaries: its
// site is its call's inline mark, an instruction of the caller whose
// logical frames end with the caller at the call's line, and the mark is
// the PC runtime tracebacks give for the call.
func TestInlineSites(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Inlined, testprog.StrippedPIE, go121, go119} {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			var copies, marks int
			for fi := range b.Funcs {
				f := &b.Funcs[fi]
				for i, in := range f.Inlines {
					copies++
					got, err := b.InlineSites(f, i)
					if err != nil {
						t.Fatalf("InlineSites(%s, %d): %v", f.Name, i, err)
					}
					if len(got) == 0 {
						t.Errorf("%s: copy %d (%s) has no site", f.Name, i, in.Func)
						continue
					}
					if in.CallPC == 0 {
						continue
					}
					marks++
					if len(got) != 1 || got[0].PC != in.CallPC || got[0].Call != in.CallPC || got[0].Kind != SiteInline {
						t.Errorf("%s: copy %d (%s): sites %+v, want one at its mark %#x", f.Name, i, in.Func, got, in.CallPC)
						continue
					}
					if o, _ := b.FileOffset(got[0].PC); o != got[0].Offset {
						t.Errorf("%s: site %#x offset %#x, want %#x", f.Name, got[0].PC, got[0].Offset, o)
					}
					caller := f.Name
					if in.Parent >= 0 {
						caller = f.Inlines[in.Parent].Func
					}
					fr := b.Frames(got[0].PC)
					if len(fr) == 0 || fr[0].Function != caller || fr[0].Line != in.CallLine || fr[len(fr)-1].Function != f.Name {
						t.Errorf("%s: copy %d (%s): frames at its mark %#x = %v, want %s at line %d first", f.Name, i, in.Func, in.CallPC, fr, caller, in.CallLine)
					}
				}
			}
			t.Logf("%d inlined copies, %d probed at their inline mark", copies, marks)
			if marks == 0 || marks < copies*9/10 {
				t.Errorf("only %d of %d copies have a usable inline mark", marks, copies)
			}
		})
	}
}
