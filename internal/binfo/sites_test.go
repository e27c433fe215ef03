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

// TestInlineSites checks every inlined copy of the fixture's binaries: a
// copy with code has sites, each site is an instruction of the copy that
// starts one of its ranges or is a jump target, and every range of the
// copy that the caller's code falls into starts with a site.
func TestInlineSites(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Inlined, testprog.StrippedPIE, go121} {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			var copies, withCode, multi, sites int
			for fi := range b.Funcs {
				f := &b.Funcs[fi]
				if len(f.Inlines) == 0 {
					continue
				}
				ranges, err := b.inlineRanges(fi)
				if err != nil {
					t.Fatal(err)
				}
				code, err := b.im.readAddr(f.Entry, f.End-f.Entry)
				if err != nil {
					t.Fatal(err)
				}
				insts := b.decodeCode(f.Entry, code)
				for i := range f.Inlines {
					copies++
					got, err := b.InlineSites(f, i)
					if err != nil {
						t.Fatalf("InlineSites(%s, %d): %v", f.Name, i, err)
					}
					sites += len(got)
					if len(got) > 1 {
						multi++
					}
					in := descendants(f.Inlines, i)
					inCopy := func(off uint32) bool {
						v := valueAt(ranges, off)
						return v >= 0 && in[v]
					}
					isSite := map[uint32]bool{}
					for _, s := range got {
						off := uint32(s.PC - f.Entry)
						isSite[off] = true
						if !inCopy(off) || s.Kind != SiteInline {
							t.Errorf("%s: site %#x of copy %d (%s) is not in the copy", f.Name, s.PC, i, f.Inlines[i].Func)
						}
						if o, _ := b.FileOffset(s.PC); o != s.Offset {
							t.Errorf("%s: site %#x offset %#x, want %#x", f.Name, s.PC, s.Offset, o)
						}
					}
					hasCode := false
					for k, ins := range insts {
						if !inCopy(ins.off) {
							continue
						}
						hasCode = true
						if k > 0 && !inCopy(insts[k-1].off) && insts[k-1].fallsThrough && !isSite[ins.off] {
							t.Errorf("%s: copy %d (%s) entered by fall-through at %#x, no site there", f.Name, i, f.Inlines[i].Func, f.Entry+uint64(ins.off))
						}
					}
					if hasCode {
						withCode++
						if len(got) == 0 {
							t.Errorf("%s: copy %d (%s) has code but no site", f.Name, i, f.Inlines[i].Func)
						}
					}
				}
			}
			t.Logf("%d inlined copies, %d with code, %d with several sites, %d sites", copies, withCode, multi, sites)
			if withCode == 0 || multi == 0 {
				t.Errorf("the fixture no longer has copies with code and copies with several sites")
			}
			// The fixture's index is inlined into main.main's loop.
			m := lookup(t, b, "main.main")
			for i, in := range m.Inlines {
				if in.Func != "main.index" {
					continue
				}
				got, err := b.InlineSites(m, i)
				if err != nil || len(got) == 0 {
					t.Fatalf("InlineSites(main.main, main.index) = %v, %v", got, err)
				}
				if fr := b.Frames(got[0].PC); len(fr) < 2 || fr[0].Function != "main.index" || fr[len(fr)-1].Function != "main.main" {
					t.Errorf("Frames at the first site of main.index = %v", fr)
				}
				return
			}
			if v.Name != testprog.Inlined.Name {
				t.Errorf("main.index is not inlined into main.main")
			}
		})
	}
}
