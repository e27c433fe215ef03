package binfo

import (
	"bytes"
	"slices"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// How far markProbe walks from an inline mark, at the most.
const (
	markWalkInsts = 16
	markWalkBytes = 64
)

// markSite returns the instruction to probe for the usable inline mark of
// a call inlined into Funcs[fi], whose code is fc; in reports the
// instructions of the call's copy. It is the one markProbe picks, or the
// mark itself when a copy in the function has no usable mark (its entry
// sites could be the instruction picked).
func (b *Binary) markSite(fi int, fc *funcCode, mark uint64, in func(off uint32) bool) uint64 {
	fn := &b.Funcs[fi]
	if !fc.allUsable {
		return mark
	}
	insts := fc.insts
	markFrames := b.Frames(mark)
	markOff := uint32(mark - fn.Entry)
	env := markEnv{
		copyAfter: !slices.ContainsFunc(insts, func(x inst) bool { return x.off < markOff && in(x.off) }),
		targeted: func(off uint32) bool {
			return fc.jumpTargets[off] || (fc.deferreturn != 0 && off == fc.deferreturn)
		},
		isMark: func(off uint32) bool { return fc.marks[off] },
		inCopy: in,
		atCall: func(off uint32) bool {
			return len(markFrames) > 0 && slices.Equal(b.Frames(fn.Entry+uint64(off)), markFrames)
		},
	}
	k, _ := instIndex(insts, markOff)
	return fn.Entry + uint64(insts[markProbe(insts, k, fc.indirect, env)].off)
}

// markEnv tells markProbe about the code around an inline mark, by
// offset in the function.
type markEnv struct {
	targeted func(off uint32) bool // a direct jump's target, or where the runtime resumes after a recover
	isMark   func(off uint32) bool // the inline mark of a call
	inCopy   func(off uint32) bool // in the inlined copy, or a call inlined into it
	atCall   func(off uint32) bool // the caller's at the call's line, as the mark is
	// copyAfter is whether every instruction of the copy lies after the
	// mark: the mark then evaluates the call's arguments, before the copy
	// runs. (A mark may also come after the copy, where the caller uses
	// its result.)
	copyAfter bool
}

// markProbe returns the index in insts of the instruction to probe for the
// inline mark insts[k], in a function that has an indirect jump when
// indirect is true: the first instruction from the mark on, in address
// order, that the kernel emulates (see emulated), provided that every
// instruction after the mark up to it runs exactly once each time the mark
// runs, and in the mark's frame. Otherwise it returns k.
//
// It keeps the mark when the mark is emulated, transfers control or
// touches RSP or RBP, and when the function has an indirect jump (its
// targets are unknown). It keeps it too when the walk from the mark meets,
// before an emulated instruction, one that
//   - is a direct jump's target, the deferreturn point or another call's
//     inline mark: it can run without the mark, or stands for another call;
//   - transfers control without being emulated, touches RSP or RBP (the
//     frame the probe reads its return address from), or does not decode;
//   - lies more than markWalkInsts instructions or markWalkBytes bytes
//     after the mark.
//
// An instruction that may fault (a nil pointer dereference, a division)
// stops the walk as well, for a panic there would be a call the probe
// misses, unless it evaluates the call's arguments, so that a fault there
// means the call was not made: the mark itself or the caller's code at the
// call's line, before any instruction of the copy, with the whole copy
// after the mark and the instruction picked in the copy.
func markProbe(insts []inst, k int, indirect bool, env markEnv) int {
	mark := insts[k]
	if mark.emulated || mark.branches || mark.writesFrame || indirect {
		return k
	}
	inCopy, argFault := false, mark.mayFault
	for j := k + 1; j < len(insts) && j-k <= markWalkInsts; j++ {
		x := insts[j]
		if x.off+x.len-mark.off > markWalkBytes || env.targeted(x.off) || env.isMark(x.off) {
			return k
		}
		if x.emulated {
			if argFault && !(env.copyAfter && env.inCopy(x.off)) {
				return k
			}
			return j
		}
		if x.branches || x.writesFrame {
			return k
		}
		if x.mayFault {
			if inCopy || !env.atCall(x.off) {
				return k
			}
			argFault = true
		}
		inCopy = inCopy || env.inCopy(x.off)
	}
	return k
}

// Multi-byte NOPs that the kernel emulates: those of its own table
// (x86_nops) without an operand-size prefix. The 5-byte one is left out:
// the kernel rewrites a probe on it into a call of a trampoline, more than
// the one breakpoint byte reach expects to be written.
var emulatedNOPs = [][]byte{
	{0x0f, 0x1f, 0x00},
	{0x0f, 0x1f, 0x40, 0x00},
	{0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
	{0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
}

// emulated reports whether the kernel's x86 uprobes emulate a probe on the
// instruction x (its encoded bytes) instead of single-stepping a copy of
// it, which costs several times more (arch/x86/kernel/uprobes.c,
// branch_setup_xol_ops and push_setup_xol_ops, as of Linux 6.18; checked
// on 6.18 by probing each kind: none made the kernel map its out-of-line
// area, "[uprobes]", into the process, and each cost about a sixth of a
// single-stepped MOV):
//   - CALL rel32 (E8), JMP rel32 (E9) and rel8 (EB), Jcc rel8 (70-7F) and
//     rel32 (0F 80-8F);
//   - NOP (90) and the NOPs of emulatedNOPs;
//   - PUSH of a register (50-57, or 41 50-57 for R8-R15), but for PUSH RBP
//     (55): the kernel takes a probe on it for one at a function's entry
//     and adds [RSP] to the stack it walks.
//
// Instructions with prefixes are not taken, REX.B of a PUSH aside: the
// kernel refuses an operand-size prefix on branches, and emulates prefixed
// NOPs in some forms only.
func emulated(x []byte) bool {
	if len(x) == 0 {
		return false
	}
	switch op := x[0]; {
	case op == 0xe8 || op == 0xe9:
		return len(x) == 5
	case op == 0xeb || (op >= 0x70 && op <= 0x7f):
		return len(x) == 2
	case op == 0x90 || (op >= 0x50 && op <= 0x57 && op != 0x55):
		return len(x) == 1
	case op == 0x41:
		return len(x) == 2 && x[1] >= 0x50 && x[1] <= 0x57
	case op == 0x0f && len(x) == 6:
		return x[1] >= 0x80 && x[1] <= 0x8f
	}
	for _, nop := range emulatedNOPs {
		if bytes.Equal(x, nop) {
			return true
		}
	}
	return false
}

// classify sets what markProbe needs to know of the decoded instruction x,
// whose bytes are code; decodeCode has set branches for the jumps, calls
// and returns it knows.
func (ins *inst) classify(x x86asm.Inst, code []byte) {
	ins.emulated = emulated(code)
	switch x.Op {
	case x86asm.LRET, x86asm.IRET, x86asm.IRETD, x86asm.IRETQ, x86asm.UD0, x86asm.UD1, x86asm.INTO,
		x86asm.SYSCALL, x86asm.SYSENTER, x86asm.SYSRET, x86asm.SYSEXIT:
		ins.branches = true
	case x86asm.POP, x86asm.POPF, x86asm.POPFD, x86asm.POPFQ, x86asm.PUSH, x86asm.PUSHF, x86asm.PUSHFD,
		x86asm.PUSHFQ, x86asm.LEAVE, x86asm.ENTER:
		ins.writesFrame = true
	case x86asm.DIV, x86asm.IDIV:
		ins.mayFault = true
	}
	for _, a := range x.Args {
		switch a := a.(type) {
		case x86asm.Reg:
			if frameReg(a) {
				ins.writesFrame = true // read or written: take it as written
			}
		case x86asm.Mem:
			if x.Op != x86asm.LEA && x.Op != x86asm.NOP && !strings.HasPrefix(x.Op.String(), "PREFETCH") && !safeMem(a) {
				ins.mayFault = true
			}
		}
	}
}

// frameReg reports whether r is RSP or RBP, or a part of one.
func frameReg(r x86asm.Reg) bool {
	switch r {
	case x86asm.RSP, x86asm.RBP, x86asm.ESP, x86asm.EBP, x86asm.SP, x86asm.BP, x86asm.SPB, x86asm.BPB:
		return true
	}
	return false
}

// safeMem reports whether a Go program's access of m cannot fault: it is
// on the stack (RSP or RBP based), a global (RIP based), or thread-local
// (FS or GS with no register).
func safeMem(m x86asm.Mem) bool {
	switch m.Base {
	case x86asm.RSP, x86asm.RBP, x86asm.RIP:
		return true
	case 0:
		return m.Index == 0 && (m.Segment == x86asm.FS || m.Segment == x86asm.GS)
	}
	return false
}
