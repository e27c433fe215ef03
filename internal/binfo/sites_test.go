package binfo

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/arch/x86/x86asm"

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
			got := copyEntries(insts, jumpTargets(insts), func(off uint32) bool { return slices.Contains(tt.in, off) })
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("entries = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMarkProbe runs markProbe over hand-assembled code. Instruction 0 is
// the inline mark; the others are referred to by index.
func TestMarkProbe(t *testing.T) {
	var (
		movDXAX   = []byte{0x48, 0x89, 0xd0}             // MOV RAX, RDX
		callRel   = []byte{0xe8, 0x00, 0x00, 0x00, 0x00} // CALL rel32
		ret       = []byte{0xc3}
		nop       = []byte{0x90}
		nop66     = []byte{0x66, 0x90}
		nop4      = []byte{0x0f, 0x1f, 0x40, 0x00}
		nop5      = []byte{0x0f, 0x1f, 0x44, 0x00, 0x00}
		je        = []byte{0x74, 0x00}
		jmpRAX    = []byte{0xff, 0xe0}
		nilCheck  = []byte{0x84, 0x00}                   // TEST [RAX], AL
		loadAX    = []byte{0x48, 0x8b, 0x18}             // MOV RBX, [RAX]
		loadSP    = []byte{0x48, 0x8b, 0x1c, 0x24}       // MOV RBX, [RSP]
		loadRIP   = []byte{0x48, 0x8b, 0x05, 0, 0, 0, 0} // MOV RAX, [RIP]
		divR8     = []byte{0x49, 0xf7, 0xf0}             // DIV R8
		popRBP    = []byte{0x5d}
		pushRBP   = []byte{0x55}
		pushR13   = []byte{0x41, 0x55}
		leaBP     = []byte{0x48, 0x8d, 0x6c, 0x24, 0xf0} // LEA RBP, [RSP-16]
		undecoded = []byte{0x06}
	)
	jmpBackTo := func(to int) []byte { return []byte{0xeb, byte(to)} } // JMP rel8: the target's index, patched below
	tests := []struct {
		name       string
		code       [][]byte
		marks      []int // other inline marks
		copyFrom   int   // the copy's first instruction; the copy runs to the end
		atCall     []int // the caller's at the call's line
		want       int
		copyBefore bool // the copy has code before the mark too
	}{
		{"MOV then CALL: the CALL", [][]byte{movDXAX, callRel, ret}, nil, 1, nil, 1, false},
		{"MOV then JE: the JE", [][]byte{movDXAX, movDXAX, je, ret}, nil, 1, nil, 2, false},
		{"mark emulated", [][]byte{nop, callRel, ret}, nil, 1, nil, 0, false},
		{"jump target in between", [][]byte{movDXAX, movDXAX, callRel, ret, jmpBackTo(1)}, nil, 1, nil, 0, false},
		{"jump target picked", [][]byte{movDXAX, callRel, ret, jmpBackTo(1)}, nil, 1, nil, 0, false},
		{"another mark in between", [][]byte{movDXAX, movDXAX, callRel, ret}, []int{1}, 1, nil, 0, false},
		{"RET before anything emulated", [][]byte{movDXAX, movDXAX, ret, callRel}, nil, 1, nil, 0, false},
		{"NOP with 0x66 is not picked", [][]byte{movDXAX, nop66, callRel, ret}, nil, 1, nil, 2, false},
		{"NOP with 0x66, then RET", [][]byte{movDXAX, nop66, ret}, nil, 1, nil, 0, false},
		{"4-byte NOP", [][]byte{movDXAX, nop4, callRel, ret}, nil, 1, nil, 1, false},
		{"5-byte NOP is not picked", [][]byte{movDXAX, nop5, ret}, nil, 1, nil, 0, false},
		{"indirect jump in the function", [][]byte{movDXAX, callRel, ret, jmpRAX}, nil, 1, nil, 0, false},
		{"nil check in the copy", [][]byte{movDXAX, nilCheck, callRel, ret}, nil, 1, nil, 0, false},
		{"load in the copy", [][]byte{movDXAX, loadAX, callRel, ret}, nil, 1, nil, 0, false},
		{"stack and global loads cannot fault", [][]byte{movDXAX, loadSP, loadRIP, callRel, ret}, nil, 1, nil, 3, false},
		{"argument evaluation may fault before the copy", [][]byte{movDXAX, divR8, loadAX, callRel, ret}, nil, 3, []int{1, 2}, 3, false},
		{"argument fault, but the pick is not the copy's", [][]byte{movDXAX, loadAX, callRel, ret}, nil, 3, []int{1}, 0, false},
		{"fault at the call's line after the copy began", [][]byte{movDXAX, movDXAX, loadAX, callRel, ret}, nil, 1, []int{2}, 0, false},
		{"fault in other caller code", [][]byte{movDXAX, loadAX, callRel, ret}, nil, 2, nil, 0, false},
		{"argument evaluation, copy also before the mark", [][]byte{movDXAX, loadAX, callRel, ret}, nil, 2, []int{1}, 0, true},
		{"copy also before the mark, no fault", [][]byte{movDXAX, movDXAX, callRel, ret}, nil, 2, nil, 2, true},
		{"mark may fault, copy after", [][]byte{loadAX, movDXAX, callRel, ret}, nil, 2, nil, 2, false},
		{"mark may fault, pick not the copy's", [][]byte{loadAX, movDXAX, callRel, ret}, nil, 3, nil, 0, false},
		{"mark may fault, copy also before it", [][]byte{loadAX, movDXAX, callRel, ret}, nil, 2, nil, 0, true},
		{"POP RBP", [][]byte{movDXAX, popRBP, callRel, ret}, nil, 1, nil, 0, false},
		{"frame pointer moved for a Duff call", [][]byte{movDXAX, leaBP, callRel, ret}, nil, 1, nil, 0, false},
		{"mark pops RBP", [][]byte{popRBP, callRel, ret}, nil, 1, nil, 0, false},
		{"PUSH R13", [][]byte{movDXAX, pushR13, ret}, nil, 1, nil, 1, false},
		{"PUSH RBP is not picked", [][]byte{movDXAX, pushRBP, callRel, ret}, nil, 1, nil, 0, false},
		{"bytes that do not decode", [][]byte{movDXAX, undecoded, callRel, ret}, nil, 1, nil, 0, false},
		{"16 instructions", append(append([][]byte{movDXAX}, slices.Repeat([][]byte{movDXAX}, 15)...), callRel, ret), nil, 1, nil, 16, false},
		{"17 instructions", append(append([][]byte{movDXAX}, slices.Repeat([][]byte{movDXAX}, 16)...), callRel, ret), nil, 1, nil, 0, false},
		{"64 bytes", append(append([][]byte{movDXAX}, slices.Repeat([][]byte{loadRIP}, 8)...), callRel, ret), nil, 1, nil, 9, false},
		{"more than 64 bytes", append(append([][]byte{movDXAX}, slices.Repeat([][]byte{loadRIP}, 9)...), callRel, ret), nil, 1, nil, 0, false},
		{"no emulated instruction", [][]byte{movDXAX, movDXAX}, nil, 1, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code []byte
			offs := make([]uint32, len(tt.code))
			for k, c := range tt.code {
				offs[k] = uint32(len(code))
				code = append(code, c...)
			}
			for k, c := range tt.code {
				if c[0] == 0xeb { // JMP rel8 to instruction c[1]
					code[offs[k]+1] = byte(int(offs[c[1]]) - int(offs[k]+2))
				}
			}
			b := &Binary{}
			insts := b.decodeCode(0x401000, code)
			if len(insts) != len(tt.code) {
				t.Fatalf("decoded %d instructions, want %d", len(insts), len(tt.code))
			}
			targeted := jumpTargets(insts)
			env := markEnv{
				targeted: func(off uint32) bool { return targeted[off] },
				isMark: func(off uint32) bool {
					return slices.ContainsFunc(tt.marks, func(k int) bool { return offs[k] == off })
				},
				inCopy: func(off uint32) bool { return off >= offs[tt.copyFrom] },
				atCall: func(off uint32) bool {
					return slices.ContainsFunc(tt.atCall, func(k int) bool { return offs[k] == off })
				},
				copyAfter: !tt.copyBefore,
			}
			indirect := slices.ContainsFunc(insts, func(x inst) bool { return x.indirectJump })
			if got := markProbe(insts, 0, indirect, env); got != tt.want {
				t.Errorf("markProbe = instruction %d, want %d", got, tt.want)
			}
		})
	}
}

// TestInlineSites checks every inlined copy of the fixture's binaries: its
// site stands for its call's inline mark, an instruction of the caller
// whose logical frames end with the caller at the call's line (the mark is
// the PC runtime tracebacks give for the call). The probe is on the mark,
// or moved a little after it to an instruction that the kernel emulates.
func TestInlineSites(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Inlined, testprog.StrippedPIE, go121, go119} {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			var copies, marks, moved, emulatedMarks int
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
					if len(got) != 1 || got[0].Call != in.CallPC || got[0].Kind != SiteInline {
						t.Errorf("%s: copy %d (%s): sites %+v, want one for its mark %#x", f.Name, i, in.Func, got, in.CallPC)
						continue
					}
					site := got[0]
					if o, _ := b.FileOffset(site.PC); o != site.Offset {
						t.Errorf("%s: site %#x offset %#x, want %#x", f.Name, site.PC, site.Offset, o)
					}
					caller := f.Name
					if in.Parent >= 0 {
						caller = f.Inlines[in.Parent].Func
					}
					fr := b.Frames(site.Call)
					if len(fr) == 0 || fr[0].Function != caller || fr[0].Line != in.CallLine || fr[len(fr)-1].Function != f.Name {
						t.Errorf("%s: copy %d (%s): frames at its mark %#x = %v, want %s at line %d first", f.Name, i, in.Func, in.CallPC, fr, caller, in.CallLine)
					}
					x := instAt(t, b, f, in.CallPC)
					if kernelEmulates(x) {
						emulatedMarks++
					}
					if site.PC == in.CallPC {
						continue
					}
					moved++
					if kernelEmulates(x) {
						t.Errorf("%s: copy %d (%s): site moved from its mark %#x, which the kernel emulates (%v)", f.Name, i, in.Func, in.CallPC, x)
					}
					if site.PC < in.CallPC || site.PC >= in.CallPC+markWalkBytes || site.PC >= f.End {
						t.Errorf("%s: copy %d (%s): site %#x, not within %d bytes after its mark %#x", f.Name, i, in.Func, site.PC, markWalkBytes, in.CallPC)
						continue
					}
					if x := instAt(t, b, f, site.PC); !kernelEmulates(x) {
						t.Errorf("%s: copy %d (%s): site %#x moved from its mark %#x to %v, which the kernel does not emulate", f.Name, i, in.Func, site.PC, in.CallPC, x)
					}
				}
			}
			t.Logf("%d inlined copies, %d with an inline mark: %d probed after it at an emulated instruction, %d at a mark the kernel emulates, %d single-stepped",
				copies, marks, moved, emulatedMarks, marks-moved-emulatedMarks)
			if marks == 0 || marks < copies*9/10 {
				t.Errorf("only %d of %d copies have a usable inline mark", marks, copies)
			}
			if stepped := marks - emulatedMarks; moved < stepped/4 {
				t.Errorf("only %d of the %d inline marks that the kernel does not emulate moved to an instruction that it does", moved, stepped)
			}
		})
	}
}

// instAt decodes the instruction of f at pc, which must start one: it is
// one of those that decoding f's code from its entry gives.
func instAt(t *testing.T, b *Binary, f *Func, pc uint64) x86asm.Inst {
	t.Helper()
	code, err := b.im.readAddr(f.Entry, f.End-f.Entry)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(code); {
		x, err := x86asm.Decode(code[off:], 64)
		n := x.Len
		if err != nil || n == 0 {
			n = 1
		}
		if f.Entry+uint64(off) == pc {
			if err != nil {
				t.Fatalf("%s: %#x does not decode: %v", f.Name, pc, err)
			}
			return x
		}
		off += n
	}
	t.Fatalf("%s: %#x is not the start of an instruction", f.Name, pc)
	return x86asm.Inst{}
}

// kernelEmulates reports whether Linux (6.18) emulates a uprobe on x
// rather than single-stepping it, as far as reach relies on: direct CALL,
// JMP and Jcc, NOP, PUSH of a register other than RBP, and the kernel's
// multi-byte NOPs but for the 5-byte one, all without an operand-size
// prefix.
func kernelEmulates(x x86asm.Inst) bool {
	for _, p := range x.Prefix {
		if p == 0 {
			break
		}
		if p&0xff == 0x66 || (p&0xff != 0x41 && x.Op != x86asm.PUSH) {
			return false
		}
	}
	switch x.Op {
	case x86asm.CALL, x86asm.JMP:
		_, rel := x.Args[0].(x86asm.Rel)
		return rel && x.Len >= 2
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE,
		x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO, x86asm.JP, x86asm.JS:
		return true
	case x86asm.NOP:
		return x.Len != 5 && x.Len <= 8
	case x86asm.PUSH:
		r, ok := x.Args[0].(x86asm.Reg)
		return ok && r != x86asm.RBP && r >= x86asm.RAX && r <= x86asm.R15
	}
	return false
}
