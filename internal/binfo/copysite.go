package binfo

import (
	"bytes"
	"slices"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// How far entryProbe walks from an entry, at the most.
const (
	entryWalkInsts = 16
	entryWalkBytes = 64
)

// entry is an instruction where execution enters an inlined copy.
type entry struct {
	k int // index in the function's instructions
	// first is whether a call can begin here: code outside the copy leads
	// here from the function's entry or deferreturn point.
	first bool
	// uncounted is whether hits here do not count calls: the entry is not
	// a first entry, or code of the copy can also jump or fall to it.
	uncounted bool
}

// classifyEntries returns, sorted, the entries of the copy whose
// instructions are those of fc for which in is true; see InlineSites for
// the rules.
func classifyEntries(fc *funcCode, in func(off uint32) bool) []entry {
	n := len(fc.insts)
	inCopy := make([]bool, n)
	for k, x := range fc.insts {
		inCopy[k] = in(x.off)
	}
	// first: reached from a root along instructions outside the copy.
	first := fc.enteredFrom(fc.roots, inCopy, nil)
	// internal: code of the copy leads here, directly or through code of
	// the caller that does not dominate every first entry (see
	// InlineSites).
	var exits []int
	for k := range n {
		if inCopy[k] {
			fc.successors(k, func(s int) { exits = append(exits, s) })
		}
	}
	internal := fc.enteredFrom(exits, inCopy, fc.commonDominators(first))
	ks := make([]int, 0, 4)
	for _, off := range copyEntries(fc.insts, fc.jumpTargets, in) {
		if k, ok := instIndex(fc.insts, off); ok {
			ks = append(ks, k)
		}
	}
	for _, r := range fc.roots {
		if inCopy[r] && !slices.Contains(ks, r) {
			ks = append(ks, r)
		}
	}
	slices.Sort(ks)
	out := make([]entry, 0, len(ks))
	for _, k := range ks {
		out = append(out, entry{k: k, first: first[k], uncounted: !first[k] || internal[k]})
	}
	return out
}

// enteredFrom returns, by instruction index, whether the instruction is
// one of the copy's (inCopy) that execution reaches from one of starts
// along instructions outside the copy, none of which is one for which stop
// is true (stop may be nil). A start in the copy is reached.
func (fc *funcCode) enteredFrom(starts []int, inCopy, stop []bool) []bool {
	out := make([]bool, len(fc.insts))
	seen := make([]bool, len(fc.insts))
	var stack []int
	visit := func(s int) {
		switch {
		case inCopy[s]:
			out[s] = true
		case !seen[s] && (stop == nil || !stop[s]):
			seen[s] = true
			stack = append(stack, s)
		}
	}
	for _, s := range starts {
		visit(s)
	}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fc.successors(k, visit)
	}
	return out
}

// entryProbe returns the index in fc.insts of the instruction to probe for
// the copy's entry fc.insts[k], where in is true for the copy's
// instructions and caller for those of the calls it is nested in and of
// the function itself (its caller chain): an instruction that the kernel
// emulates (see emulated) and that runs exactly once each time the entry
// runs, in the same frame, or else k. It tries, in order:
//
// After the entry: the first instruction of the copy from the entry on,
// in address order, that the kernel emulates, provided that the
// instructions from the entry up to it are the copy's or its caller
// chain's (none emulated), and that each falls through to the next. Not when the entry or an instruction up to it
// transfers control, touches RSP or RBP (the frame the probe reads its
// return address from), may fault (a nil pointer dereference, a division:
// a fault there is an execution of the copy that a probe after it would
// miss) or does not decode, nor past an instruction that is a direct
// jump's target or the deferreturn point (it can run without the entry).
//
// Before the entry: the nearest instruction before it that the kernel
// emulates and that neither transfers control nor touches RSP or RBP (a
// NOP, such as the call's own inline mark when the compiler kept it),
// provided that the instructions from it up to the entry are the caller
// chain's and fall through to the next without fault, and that none of
// them after it, nor the entry, is a jump's target, the deferreturn point
// or a possible target of an indirect jump: execution then reaches the
// entry only through it.
//
// Either walk goes at most entryWalkInsts instructions and entryWalkBytes
// bytes. Instructions of other calls (siblings of the copy) stop both, and
// a probe goes after an entry only on the copy's own code, so that two
// copies of one function never share a probe: a caller's instruction that
// one copy's walk after its entry could reach, the next copy's walk
// before its entry could pick.
func entryProbe(fc *funcCode, k int, in, caller func(off uint32) bool) int {
	insts := fc.insts
	e := insts[k]
	if e.emulated {
		return k
	}
	if !e.branches && !e.writesFrame && !e.mayFault {
		for j := k + 1; j < len(insts) && j-k <= entryWalkInsts; j++ {
			x := insts[j]
			if x.off+x.len-e.off > entryWalkBytes || fc.jumpTargets[x.off] || slices.Contains(fc.roots, j) ||
				!(in(x.off) || caller(x.off)) {
				break
			}
			if x.emulated && in(x.off) {
				return j
			}
			if x.emulated || x.branches || x.writesFrame || x.mayFault {
				break
			}
		}
	}
	entered := func(j int) bool {
		off := insts[j].off
		return fc.jumpTargets[off] || slices.Contains(fc.roots, j) || slices.Contains(fc.indirectTargets, j)
	}
	if entered(k) {
		return k
	}
	for j := k - 1; j >= 0 && k-j <= entryWalkInsts; j-- {
		x := insts[j]
		if e.off-x.off > entryWalkBytes || !caller(x.off) || x.branches || x.writesFrame || x.mayFault || !x.fallsThrough {
			break
		}
		if x.emulated {
			return j
		}
		if entered(j) {
			break
		}
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

// classify sets what entryProbe needs to know of the decoded instruction x,
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
	ins.move = isMove(x)
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

// isMove reports whether x only moves a value between registers and the
// frame's stack slots (RSP or RBP based, no index), or puts a constant in
// a register (MOV of an immediate, XOR of a register with itself): what
// the register allocator inserts (spills, reloads, copies, constants it
// rematerializes), which runs wherever the allocator needs it.
func isMove(x x86asm.Inst) bool {
	switch x.Op {
	case x86asm.MOV, x86asm.MOVQ, x86asm.MOVD, x86asm.MOVUPS, x86asm.MOVAPS, x86asm.MOVSD_XMM, x86asm.MOVSS:
	case x86asm.XOR, x86asm.XORPS:
		a, ok1 := x.Args[0].(x86asm.Reg)
		b, ok2 := x.Args[1].(x86asm.Reg)
		return ok1 && ok2 && a == b
	default:
		return false
	}
	mem := 0
	for _, a := range x.Args {
		switch a := a.(type) {
		case nil, x86asm.Reg, x86asm.Imm:
		case x86asm.Mem:
			if (a.Base != x86asm.RSP && a.Base != x86asm.RBP) || a.Index != 0 || a.Segment != 0 {
				return false
			}
			mem++
		default:
			return false
		}
	}
	if _, imm := x.Args[1].(x86asm.Imm); imm && mem > 0 {
		return false // a store of a constant to the stack: the callee's own variable
	}
	return mem <= 1
}
