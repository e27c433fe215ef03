package binfo

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/reach-sca/reach/internal/testprog"
)

// Kinds of instruction in the hand-made streams of TestCopyEntries and
// TestClassifyEntries.
const (
	fall = iota // falls through
	jmp         // unconditional direct jump
	jcc         // conditional jump
	ret         // return (does not fall through)
	ijmp        // indirect jump
)

// op is one instruction of a hand-made stream: its kind and, for jumps,
// the offset it targets.
type op struct {
	kind   int
	target int
}

// stream returns the instructions of ops, instruction k at offset k.
func stream(ops []op) []inst {
	insts := make([]inst, len(ops))
	for k, o := range ops {
		insts[k] = inst{off: uint32(k), len: 1, target: -1, fallsThrough: o.kind == fall || o.kind == jcc}
		if o.kind == jmp || o.kind == jcc {
			insts[k].target = int64(o.target)
		}
		insts[k].indirectJump = o.kind == ijmp
	}
	return insts
}

// TestCopyEntries runs the entry rule of InlineSites over hand-made
// instruction streams. Instruction k is at offset k; "in" lists the
// offsets in the copy.
func TestCopyEntries(t *testing.T) {
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
			insts := stream(tt.ops)
			got := copyEntries(insts, jumpTargets(insts), func(off uint32) bool { return slices.Contains(tt.in, off) })
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("entries = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestClassifyEntries runs the counting rules of InlineSites over
// hand-made instruction streams, as TestCopyEntries does.
func TestClassifyEntries(t *testing.T) {
	type want struct {
		off              uint32
		first, uncounted bool
	}
	tests := []struct {
		name        string
		ops         []op
		in          []uint32
		deferreturn uint32
		want        []want
	}{
		{"one entry", []op{{fall, 0}, {fall, 0}, {fall, 0}, {ret, 0}}, []uint32{1, 2}, 0, []want{{1, true, false}}},
		{"copy at the function's first instruction", []op{{fall, 0}, {ret, 0}}, []uint32{0}, 0, []want{{0, true, false}}},
		{"b && f(x): only the branch taken when b is true enters", []op{
			{jcc, 3}, // 0 caller: b true goes to the copy
			{fall, 0},
			{jmp, 5},
			{fall, 0}, // 3 copy
			{fall, 0}, // 4 copy
			{ret, 0},  // 5 caller
		}, []uint32{3, 4}, 0, []want{{3, true, false}}},
		{"results stored after caller code: a re-entry", []op{
			{fall, 0}, // 0 caller
			{fall, 0}, // 1 copy: the call
			{fall, 0}, // 2 caller
			{jcc, 5},  // 3 caller
			{fall, 0}, // 4 copy: results stored
			{ret, 0},  // 5 caller
		}, []uint32{1, 4}, 0, []want{{1, true, false}, {4, false, true}}},
		{"the caller's loop: the first entry is still counted", []op{
			{fall, 0}, // 0 caller: loop head
			{fall, 0}, // 1 copy
			{fall, 0}, // 2 copy
			{jcc, 0},  // 3 caller: back to the head
			{ret, 0},  // 4
		}, []uint32{1, 2}, 0, []want{{1, true, false}}},
		{"the callee's loop at the copy's start", []op{
			{fall, 0}, // 0 caller
			{fall, 0}, // 1 copy: loop head
			{jcc, 1},  // 2 copy: back to the head
			{ret, 0},  // 3 caller
		}, []uint32{1, 2}, 0, []want{{1, true, true}}},
		{"two first entries on two paths", []op{
			{jcc, 3},  // 0 caller
			{fall, 0}, // 1 copy
			{jmp, 4},  // 2 copy
			{fall, 0}, // 3 copy, entered from 0
			{ret, 0},  // 4 caller
		}, []uint32{1, 2, 3}, 0, []want{{1, true, false}, {3, true, false}}},
		{"a first entry that the copy also leads to through a caller jump", []op{
			// yaml.v2's remove_simple_key in fetch_block_entry (go1.21.0): a
			// reload of the copy's argument on one path, then the caller's
			// jump to where the other path enters.
			{jcc, 3},  // 0 caller
			{fall, 0}, // 1 copy: the reload
			{jmp, 3},  // 2 caller
			{fall, 0}, // 3 copy, entered from 0 and 2
			{ret, 0},  // 4 caller
		}, []uint32{1, 3}, 0, []want{{1, true, false}, {3, true, true}}},
		{"the caller's loop through code after the copy", []op{
			{jmp, 3},  // 0 caller: into the rotated loop
			{fall, 0}, // 1 copy
			{fall, 0}, // 2 caller: i++
			{jcc, 1},  // 3 caller: the loop's condition, dominates the copy
			{ret, 0},  // 4 caller
		}, []uint32{1}, 0, []want{{1, true, false}}},
		{"unreachable caller code falls into the copy", []op{{ret, 0}, {fall, 0}, {fall, 0}, {ret, 0}}, []uint32{2}, 0, []want{{2, false, true}}},
		{"deferreturn point in the copy", []op{{fall, 0}, {ret, 0}, {fall, 0}, {ret, 0}}, []uint32{2, 3}, 2, []want{{2, true, false}}},
		{"jump table outside the copy", []op{{ijmp, 0}, {ret, 0}, {fall, 0}, {ret, 0}}, []uint32{2, 3}, 0, []want{{2, true, false}}},
		{"jump table inside the copy", []op{{fall, 0}, {ijmp, 0}, {ret, 0}, {fall, 0}, {ret, 0}}, []uint32{1, 2, 3, 4}, 0, []want{{1, true, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			insts := stream(tt.ops)
			fc := newFuncCode(insts, tt.deferreturn)
			var got []want
			for _, e := range classifyEntries(fc, func(off uint32) bool { return slices.Contains(tt.in, off) }) {
				got = append(got, want{insts[e.k].off, e.first, e.uncounted})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("entries {off first uncounted} = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEntryProbe runs entryProbe over hand-assembled code. Instruction 0 is
// the copy's entry; the others are referred to by index.
func TestEntryProbe(t *testing.T) {
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
		name        string
		code        [][]byte
		entry       int
		copy        []int // the copy's instructions; nil for all from the entry on
		other       []int // another call's instructions; the rest are the caller chain's
		deferreturn int
		want        int
	}{
		{"MOV then CALL: the CALL", [][]byte{movDXAX, callRel, ret}, 0, nil, nil, 0, 1},
		{"MOV then JE: the JE", [][]byte{movDXAX, movDXAX, je, ret}, 0, nil, nil, 0, 2},
		{"entry emulated", [][]byte{nop, callRel, ret}, 0, nil, nil, 0, 0},
		{"jump target in between", [][]byte{movDXAX, movDXAX, callRel, ret, jmpBackTo(1)}, 0, nil, nil, 0, 0},
		{"jump target picked", [][]byte{movDXAX, callRel, ret, jmpBackTo(1)}, 0, nil, nil, 0, 0},
		{"deferreturn point in between", [][]byte{movDXAX, movDXAX, callRel, ret}, 0, nil, nil, 1, 0},
		{"through the caller's code back to the copy's", [][]byte{movDXAX, movDXAX, callRel, ret}, 0, []int{0, 2, 3}, nil, 0, 2},
		{"the caller's emulated instruction is not picked", [][]byte{movDXAX, nop, callRel, ret}, 0, []int{0, 2, 3}, nil, 0, 0},
		{"another call's code in between", [][]byte{movDXAX, movDXAX, callRel, ret}, 0, []int{0, 2, 3}, []int{1}, 0, 0},
		{"RET before anything emulated", [][]byte{movDXAX, movDXAX, ret, callRel}, 0, nil, nil, 0, 0},
		{"NOP with 0x66 is not picked", [][]byte{movDXAX, nop66, callRel, ret}, 0, nil, nil, 0, 2},
		{"NOP with 0x66, then RET", [][]byte{movDXAX, nop66, ret}, 0, nil, nil, 0, 0},
		{"4-byte NOP", [][]byte{movDXAX, nop4, callRel, ret}, 0, nil, nil, 0, 1},
		{"5-byte NOP is not picked", [][]byte{movDXAX, nop5, ret}, 0, nil, nil, 0, 0},
		{"indirect jump", [][]byte{movDXAX, jmpRAX, callRel, ret}, 0, nil, nil, 0, 0},
		{"nil check", [][]byte{movDXAX, nilCheck, callRel, ret}, 0, nil, nil, 0, 0},
		{"load", [][]byte{movDXAX, loadAX, callRel, ret}, 0, nil, nil, 0, 0},
		{"division", [][]byte{movDXAX, divR8, callRel, ret}, 0, nil, nil, 0, 0},
		{"the entry may fault", [][]byte{loadAX, movDXAX, callRel, ret}, 0, nil, nil, 0, 0},
		{"stack and global loads cannot fault", [][]byte{movDXAX, loadSP, loadRIP, callRel, ret}, 0, nil, nil, 0, 3},
		{"POP RBP", [][]byte{movDXAX, popRBP, callRel, ret}, 0, nil, nil, 0, 0},
		{"frame pointer moved for a Duff call", [][]byte{movDXAX, leaBP, callRel, ret}, 0, nil, nil, 0, 0},
		{"entry pops RBP", [][]byte{popRBP, callRel, ret}, 0, nil, nil, 0, 0},
		{"PUSH R13", [][]byte{movDXAX, pushR13, ret}, 0, nil, nil, 0, 1},
		{"PUSH RBP is not picked", [][]byte{movDXAX, pushRBP, callRel, ret}, 0, nil, nil, 0, 0},
		{"bytes that do not decode", [][]byte{movDXAX, undecoded, callRel, ret}, 0, nil, nil, 0, 0},
		{"16 instructions", append(slices.Repeat([][]byte{movDXAX}, 16), callRel, ret), 0, nil, nil, 0, 16},
		{"17 instructions", append(slices.Repeat([][]byte{movDXAX}, 17), callRel, ret), 0, nil, nil, 0, 0},
		{"64 bytes", append(append([][]byte{movDXAX}, slices.Repeat([][]byte{loadRIP}, 8)...), callRel, ret), 0, nil, nil, 0, 9},
		{"more than 64 bytes", append(append([][]byte{movDXAX}, slices.Repeat([][]byte{loadRIP}, 9)...), callRel, ret), 0, nil, nil, 0, 0},
		{"no emulated instruction", [][]byte{movDXAX, movDXAX}, 0, nil, nil, 0, 0},
		// Before the entry.
		{"the NOP before a faulting entry", [][]byte{nop, loadAX, ret}, 1, nil, nil, 0, 0},
		{"the NOP before, over the caller's MOV", [][]byte{nop, movDXAX, loadAX, ret}, 2, nil, nil, 0, 0},
		{"the entry is a jump target", [][]byte{nop, loadAX, ret, jmpBackTo(1)}, 1, nil, nil, 0, 1},
		{"a jump target in between", [][]byte{nop, movDXAX, loadAX, ret, jmpBackTo(1)}, 2, nil, nil, 0, 2},
		{"the NOP may be a jump target", [][]byte{nop, movDXAX, loadAX, ret, jmpBackTo(0)}, 2, nil, nil, 0, 0},
		{"the entry is the deferreturn point", [][]byte{nop, loadAX, ret}, 1, nil, nil, 1, 1},
		{"another call's code in between", [][]byte{nop, movDXAX, loadAX, ret}, 2, nil, []int{1}, 0, 2},
		{"another call's NOP", [][]byte{nop, loadAX, ret}, 1, nil, []int{0}, 0, 1},
		{"a CALL before", [][]byte{callRel, loadAX, ret}, 1, nil, nil, 0, 1},
		{"a load before", [][]byte{nop, loadAX, loadAX, ret}, 2, nil, nil, 0, 2},
		{"PUSH R13 before is not picked", [][]byte{pushR13, loadAX, ret}, 1, nil, nil, 0, 1},
		{"after an indirect jump", [][]byte{jmpRAX, loadAX, ret}, 1, nil, nil, 0, 1},
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
			index := func(off uint32) int { return slices.Index(offs, off) }
			in := func(off uint32) bool {
				if tt.copy == nil {
					return index(off) >= tt.entry && !slices.Contains(tt.other, index(off))
				}
				return slices.Contains(tt.copy, index(off))
			}
			caller := func(off uint32) bool { return !in(off) && !slices.Contains(tt.other, index(off)) }
			var deferreturn uint32
			if tt.deferreturn > 0 {
				deferreturn = offs[tt.deferreturn]
			}
			fc := newFuncCode(insts, deferreturn)
			if got := entryProbe(fc, tt.entry, in, caller); got != tt.want {
				t.Errorf("entryProbe = instruction %d, want %d", got, tt.want)
			}
		})
	}
}

// TestInlineSites checks every inlined copy of the fixture's binaries:
// each site stands for an entry of the copy (Site.Call), an instruction of
// the copy whose logical frames are the inlined function's, called from
// the caller at the call's line; the probe is on the entry, or moved a
// little after it to an instruction that the kernel emulates. It logs the
// share of copies whose sites the kernel all emulates, and of those
// counted exactly.
func TestInlineSites(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Inlined, testprog.StrippedPIE, go121, go119} {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			var copies, withCode, emulatedAll, moved, before, stepped, exact, sites int
			for fi := range b.Funcs {
				f := &b.Funcs[fi]
				for i, in := range f.Inlines {
					copies++
					got, err := b.InlineSites(f, i)
					if err != nil {
						t.Fatalf("InlineSites(%s, %d): %v", f.Name, i, err)
					}
					if len(got) == 0 {
						continue
					}
					withCode++
					caller := f.Name
					if in.Parent >= 0 {
						caller = f.Inlines[in.Parent].Func
					}
					allEmulated, counted, inexact := true, 0, got[0].Inexact
					for k, site := range got {
						sites++
						if k > 0 && site.PC <= got[k-1].PC {
							t.Errorf("%s: copy %d (%s): sites not sorted: %#x after %#x", f.Name, i, in.Func, site.PC, got[k-1].PC)
						}
						if site.Kind != SiteInline || site.Inexact != inexact {
							t.Errorf("%s: copy %d (%s): site %+v, want an inline site, inexact like the copy's others", f.Name, i, in.Func, site)
						}
						if !site.Uncounted {
							counted++
						}
						if o, _ := b.FileOffset(site.PC); o != site.Offset {
							t.Errorf("%s: site %#x offset %#x, want %#x", f.Name, site.PC, site.Offset, o)
						}
						fr := b.Frames(site.Call)
						k := slices.IndexFunc(fr, func(x Frame) bool { return x.Function == in.Func })
						if k < 0 || k+1 >= len(fr) || fr[k+1].Function != caller || fr[k+1].Line != in.CallLine || fr[len(fr)-1].Function != f.Name {
							t.Errorf("%s: copy %d (%s): frames at its entry %#x = %v, want %s called from %s at line %d", f.Name, i, in.Func, site.Call, fr, in.Func, caller, in.CallLine)
						}
						x := instAt(t, b, f, site.PC)
						if !kernelEmulates(x) {
							allEmulated = false
						}
						if site.PC == site.Call {
							continue
						}
						moved++
						if e := instAt(t, b, f, site.Call); kernelEmulates(e) {
							t.Errorf("%s: copy %d (%s): site moved from its entry %#x, which the kernel emulates (%v)", f.Name, i, in.Func, site.Call, e)
						}
						if site.PC+entryWalkBytes < site.Call || site.PC >= site.Call+entryWalkBytes || site.PC < f.Entry || site.PC >= f.End {
							t.Errorf("%s: copy %d (%s): site %#x, not within %d bytes of its entry %#x", f.Name, i, in.Func, site.PC, entryWalkBytes, site.Call)
							continue
						}
						if !kernelEmulates(x) {
							t.Errorf("%s: copy %d (%s): site %#x moved from its entry %#x to %v, which the kernel does not emulate", f.Name, i, in.Func, site.PC, site.Call, x)
						}
						inCopy := slices.IndexFunc(b.Frames(site.PC), func(x Frame) bool { return x.Function == in.Func }) >= 0
						if site.PC > site.Call && !inCopy {
							t.Errorf("%s: copy %d (%s): site %#x moved after its entry %#x out of the copy: frames %v", f.Name, i, in.Func, site.PC, site.Call, b.Frames(site.PC))
						}
						if site.PC < site.Call {
							before++
							if inCopy || x.Op != x86asm.NOP {
								t.Errorf("%s: copy %d (%s): site %#x moved before its entry %#x to %v, not a NOP of the caller (frames %v)", f.Name, i, in.Func, site.PC, site.Call, x, b.Frames(site.PC))
							}
						}
					}
					if counted == 0 && !inexact {
						t.Errorf("%s: copy %d (%s): no counted site, but the copy's sites are not inexact", f.Name, i, in.Func)
					}
					if allEmulated {
						emulatedAll++
					}
					if !inexact {
						exact++
					}
					for _, site := range got {
						if !kernelEmulates(instAt(t, b, f, site.PC)) {
							stepped++
						}
					}
				}
			}
			t.Logf("%d inlined copies, %d with code, %d sites (%d moved from their entry to an emulated instruction, %d of them before it; %d single-stepped); copies with every site emulated: %.1f%%, counted exactly: %.1f%%",
				copies, withCode, sites, moved, before, stepped, 100*float64(emulatedAll)/float64(withCode), 100*float64(exact)/float64(withCode))
			if withCode < copies*9/10 {
				t.Errorf("only %d of %d copies have code", withCode, copies)
			}
			if exact < withCode*3/4 {
				t.Errorf("only %d of the %d copies with code are counted exactly", exact, withCode)
			}
			if moved == 0 || before == 0 {
				t.Errorf("%d sites moved from their entry to an instruction that the kernel emulates, %d of them before it: want some of each", moved, before)
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

// TestInlineMarksElsewhere checks, on testdata/progs/inlinecopies built
// with go1.21.0, the facts that keep InlineSites off inline marks: the
// compiler stands a call's mark in with another instruction at the call's
// line, which here is the branch of `b && f(x)` (another path), the jump
// into a rotated loop (which a loop's calls do not pass again), and an
// instruction after the copy of a call that never returns.
func TestInlineMarksElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping builds with other toolchains")
	}
	path := testprog.Build(t, testprog.Dir(t, "inlinecopies"), go121)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tests := []struct {
		caller, callee string
		check          func(t *testing.T, mark inst, markK int, fc *funcCode, inCopy []bool)
	}{
		{"main.check", "net/http.CanonicalHeaderKey", func(t *testing.T, mark inst, _ int, _ *funcCode, _ []bool) {
			if !mark.branches || !mark.fallsThrough || mark.target < 0 {
				t.Errorf("the mark is not a conditional jump: %+v", mark)
			}
		}},
		{"main.loop", "golang.org/x/text/language.Parse", func(t *testing.T, mark inst, markK int, fc *funcCode, inCopy []bool) {
			if mark.fallsThrough || mark.target < 0 {
				t.Errorf("the mark is not a direct unconditional jump: %+v", mark)
			}
			// The copy, run again and again, never leads back to it.
			seen := make([]bool, len(fc.insts))
			var stack []int
			for k, in := range inCopy {
				if in {
					stack = append(stack, k)
				}
			}
			for len(stack) > 0 {
				k := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				fc.successors(k, func(s int) {
					if !seen[s] {
						seen[s] = true
						stack = append(stack, s)
					}
				})
			}
			if seen[markK] {
				t.Errorf("the copy leads back to the mark")
			}
		}},
		{"main.serve", "net/http.ListenAndServe", func(t *testing.T, mark inst, _ int, fc *funcCode, inCopy []bool) {
			last := -1
			for k, in := range inCopy {
				if in {
					last = k
				}
			}
			if last < 0 || fc.insts[last].off > mark.off || !fc.insts[last].branches {
				t.Errorf("the mark does not follow the copy's last instruction, a call")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.caller, func(t *testing.T) {
			f := lookup(t, b, tt.caller)
			i := slices.IndexFunc(f.Inlines, func(in Inline) bool { return in.Func == tt.callee })
			if i < 0 {
				t.Fatalf("%s is not inlined into %s", tt.callee, tt.caller)
			}
			fi, _ := b.indexOf(f)
			fc, err := b.funcCode(fi)
			if err != nil {
				t.Fatal(err)
			}
			ranges, err := b.inlineRanges(fi)
			if err != nil {
				t.Fatal(err)
			}
			tree := descendants(f.Inlines, i)
			inCopy := make([]bool, len(fc.insts))
			for k, x := range fc.insts {
				v := valueAt(ranges, x.off)
				inCopy[k] = v >= 0 && tree[v]
			}
			markK, ok := instIndex(fc.insts, uint32(f.Inlines[i].CallPC-f.Entry))
			if !ok || inCopy[markK] {
				t.Fatalf("the mark %#x is not an instruction of %s outside the copy", f.Inlines[i].CallPC, tt.caller)
			}
			tt.check(t, fc.insts[markK], markK, fc, inCopy)
			sites, err := b.InlineSites(f, i)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sites {
				if s.PC == f.Inlines[i].CallPC || s.Call == f.Inlines[i].CallPC {
					t.Errorf("site %+v at the mark", s)
				}
			}
		})
	}
}

// TestIsMove checks which instructions count as the register allocator's
// moves, on encodings taken from go1.21.0 binaries.
func TestIsMove(t *testing.T) {
	tests := []struct {
		name string
		code []byte
		want bool
	}{
		{"spill MOVQ CX, 0x68(SP)", []byte{0x48, 0x89, 0x4c, 0x24, 0x68}, true},
		{"reload MOVQ 0x168(SP), AX", []byte{0x48, 0x8b, 0x84, 0x24, 0x68, 0x01, 0x00, 0x00}, true},
		{"copy MOVQ R12, BX", []byte{0x4c, 0x89, 0xe3}, true},
		{"constant MOVL $0x1, R12", []byte{0x41, 0xbc, 0x01, 0x00, 0x00, 0x00}, true},
		{"zero XORL AX, AX", []byte{0x31, 0xc0}, true},
		{"heap load MOVQ 0x188(AX), DX", []byte{0x48, 0x8b, 0x90, 0x88, 0x01, 0x00, 0x00}, false},
		{"global store MOVL $0x1, 0x4190ea(IP)", []byte{0xc7, 0x05, 0xea, 0x90, 0x41, 0x00, 0x01, 0x00, 0x00, 0x00}, false},
		{"stack store of a constant MOVQ $0x3, 0x40(SP)", []byte{0x48, 0xc7, 0x44, 0x24, 0x40, 0x03, 0x00, 0x00, 0x00}, false},
		{"XORL AX, BX", []byte{0x31, 0xd8}, false},
		{"LEAQ -0x1(DX), SI", []byte{0x48, 0x8d, 0x72, 0xff}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := x86asm.Decode(tt.code, 64)
			if err != nil {
				t.Fatal(err)
			}
			if got := isMove(x); got != tt.want {
				t.Errorf("isMove(%v) = %v, want %v", x, got, tt.want)
			}
		})
	}
}
