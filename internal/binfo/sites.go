package binfo

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/arch/x86/x86asm"
)

// pushRBP is the encoding of PUSH RBP.
const pushRBP = 0x55

// EntrySite returns the probe site for calls to f: its PUSH RBP when it has
// one, else its entry.
//
// The PUSH RBP is found from the pclntab alone, so stripped binaries work:
// the SP delta table (pcsp) first leaves 0 to become 8 just after the push,
// at pc X, and the byte at X-1 is 0x55. Frameless functions, and functions
// of old toolchains whose prologue is SUB RSP then MOV [RSP+n], RBP, get
// SiteEntry at Entry. Only amd64 binaries are supported.
func (b *Binary) EntrySite(f *Func) (Site, error) {
	if b.GOARCH != "amd64" {
		return Site{}, fmt.Errorf("entry site of %s in %s: %s: %w", funcName(f), b.Path, b.GOARCH, ErrUnsupported)
	}
	i, err := b.indexOf(f)
	if err != nil {
		return Site{}, fmt.Errorf("entry site: %w", err)
	}
	fn := &b.Funcs[i]
	r, ok := b.tab.fn(b.funcOff[i])
	if !ok {
		return Site{}, fmt.Errorf("entry site of %s: %w", fn.Name, ErrCorrupt)
	}
	site := Site{Kind: SiteEntry, PC: fn.Entry}
	sp := decodePCValue(nil, b.tab.pctab, r.pcsp(), fn.End-fn.Entry, b.tab.minLC)
	for _, rg := range sp {
		if rg.val == 0 {
			continue
		}
		if rg.val == 8 && rg.lo > 0 {
			c, err := b.im.readAddr(fn.Entry+uint64(rg.lo)-1, 1)
			if err != nil {
				return Site{}, fmt.Errorf("entry site of %s in %s: %w", fn.Name, b.Path, err)
			}
			if c[0] == pushRBP {
				site = Site{Kind: SitePushBP, PC: fn.Entry + uint64(rg.lo) - 1}
			}
		}
		break
	}
	if site.Offset, err = b.FileOffset(site.PC); err != nil {
		return Site{}, fmt.Errorf("entry site of %s: %w", fn.Name, err)
	}
	return site, nil
}

// InlineSites returns the probe sites of the inlined call f.Inlines[i]:
// the instructions where a call's execution enters the call's copy, the
// instructions of f whose InlTreeIndex pcdata is i or an inlined call
// nested in i. A copy is reached if and only if one of its instructions
// ran, and each time a call runs it, execution first enters it at one of
// these: no execution is missed, whether the copy returns or not.
//
// The call's inline mark (Inline.CallPC) is not used: the compiler makes
// the first instruction of the function at the call's line the mark
// (TestInlineMarksElsewhere), which may be on another path (the branch of
// `b && f(x)`), outside a loop that makes the call, or after a call that
// never returns.
//
// The copy's instructions leave out the register allocator's moves
// (spills, reloads, register copies and constants, see isMove) unless the
// copy has nothing else: they carry the position of a value's use and run
// where the allocator needs them, before a branch that skips the copy
// (TestInlineCopiesCoverage's tls case, with -cover under go1.21.0).
//
// The function's code is decoded linearly from Entry to End (once: the
// decoded code of each function asked about is kept as long as b). An
// instruction of the copy is an entry when
//   - it is f's first instruction or its deferreturn point, or
//   - the instruction before it is outside the copy and can fall through to
//     it (anything but JMP, RET, UD2, INT3, HLT and calls of runtime
//     functions that never return, such as runtime.panicIndex), or
//   - a direct jump or conditional jump outside the copy targets it, or
//   - f has an indirect jump (a switch's jump table) outside the copy, and
//     the instruction follows one that cannot fall through and is not the
//     target of any direct jump: it can only be reached indirectly.
//
// An entry is a first entry when code outside the copy leads to it from
// f's entry or deferreturn point: a call can begin there. The other
// entries are re-entries, as when the copy's body is split into ranges
// around code of the caller: every path to them runs an instruction of
// the copy first, and the first such instruction in an invocation of f is
// a first entry. So re-entries get no site: a first entry's hit saw the
// copy run, and counting them would count one call several times.
//
// Counting (Site.Uncounted, Site.Inexact): a first entry that the copy's
// own code can also jump or fall to (a loop of the callee at its start)
// can run more than once per call: it is Uncounted, and since calls that
// begin there pass no counted site, every site of the copy is Inexact.
// So is a first entry that code of the copy leads to through code of the
// caller, unless that path passes an instruction of the caller that
// dominates every first entry (runs before any call can begin each time,
// such as the condition of a loop that makes the call): the copy's body
// may be split around the caller's code (yaml.v2's remove_simple_key in
// fetch_block_entry, go1.21.0: a reload on one path, then the caller's
// jump to where the other path enters), and a call would pass two first
// entries. The other first entries are counted: a call that left its copy
// comes back to a first entry only through code that runs before the
// call; TestInlineCopiesCoverage (package observe) checks counts against
// Go's coverage.
//
// The kernel single-steps most instructions: in count mode that cost
// about 4.4 µs a call in bench/overhead, against about 1 µs at an
// instruction the kernel emulates (a direct CALL or jump, a NOP, a PUSH;
// see emulated). So the probe (Site.PC) goes on an instruction the kernel
// emulates shortly after the entry, in the copy, or shortly before it, a
// NOP of the caller, when it runs exactly once each time the entry runs,
// in the same frame (entryProbe has the rules); otherwise it stays on the
// entry. Either way, a hit symbolizes as the entry, Site.Call: the inlined
// function at its line, called from the caller at the call's line.
//
// Under reach attach, a call that is under way when the probes are armed
// is seen from its copy's next first entry on.
//
// Sites are sorted by PC. Only amd64 binaries are supported.
func (b *Binary) InlineSites(f *Func, i int) ([]Site, error) {
	if b.GOARCH != "amd64" {
		return nil, fmt.Errorf("inline sites of %s in %s: %s: %w", funcName(f), b.Path, b.GOARCH, ErrUnsupported)
	}
	fi, err := b.indexOf(f)
	if err != nil {
		return nil, fmt.Errorf("inline sites: %w", err)
	}
	fn := &b.Funcs[fi]
	if i < 0 || i >= len(fn.Inlines) {
		return nil, fmt.Errorf("inline sites of %s: no inlined call %d (it has %d)", fn.Name, i, len(fn.Inlines))
	}
	inCopy := descendants(fn.Inlines, i)
	ranges, err := b.inlineRanges(fi)
	if err != nil {
		return nil, fmt.Errorf("inline sites of %s: %w", fn.Name, err)
	}
	fc, err := b.funcCode(fi)
	if err != nil {
		return nil, fmt.Errorf("inline sites of %s: read code: %w", fn.Name, err)
	}
	in := func(off uint32) bool {
		v := valueAt(ranges, off)
		return v >= 0 && int(v) < len(inCopy) && inCopy[v]
	}
	chain := ancestors(fn.Inlines, i)
	caller := func(off uint32) bool {
		v := valueAt(ranges, off)
		return v < 0 || (int(v) < len(chain) && chain[v])
	}
	// The register allocator's spills, reloads and copies take the
	// position of a value's use, so a copy's pcdata also covers moves that
	// run where its code does not (a spill of crypto/tls's
	// quicSetReadSecret's argument before `if c.quic != nil`, go1.21.0
	// -cover): they are not the copy's code, unless it has nothing else.
	inAll := in
	in = func(off uint32) bool {
		if !inAll(off) {
			return false
		}
		k, ok := instIndex(fc.insts, off)
		return !ok || !fc.insts[k].move
	}
	entries := slices.DeleteFunc(classifyEntries(fc, in), func(e entry) bool { return !e.first })
	if len(entries) == 0 {
		in = inAll
		entries = slices.DeleteFunc(classifyEntries(fc, in), func(e entry) bool { return !e.first })
	}
	inexact := slices.ContainsFunc(entries, func(e entry) bool { return e.uncounted })
	sites := make([]Site, 0, len(entries))
	for _, e := range entries {
		call := fn.Entry + uint64(fc.insts[e.k].off)
		pc := fn.Entry + uint64(fc.insts[entryProbe(fc, e.k, in, caller)].off)
		o, err := b.FileOffset(pc)
		if err != nil {
			return nil, fmt.Errorf("inline sites of %s: %w", fn.Name, err)
		}
		sites = append(sites, Site{Kind: SiteInline, PC: pc, Offset: o, Call: call, Uncounted: e.uncounted, Inexact: inexact})
	}
	return sites, nil
}

// instIndex returns the index of the instruction of insts, which are
// sorted, that starts at off.
func instIndex(insts []inst, off uint32) (int, bool) {
	return slices.BinarySearchFunc(insts, off, func(x inst, off uint32) int { return cmp.Compare(x.off, off) })
}

// copyEntries returns, sorted, the offsets of the instructions of a copy
// (those for which in is true) where execution enters it; see InlineSites.
// targeted is the set of offsets that direct jumps of insts target, as
// jumpTargets returns it.
func copyEntries(insts []inst, targeted map[uint32]bool, in func(off uint32) bool) []uint32 {
	entries := map[uint32]bool{}
	indirectOutside := false
	for k, ins := range insts {
		inside := in(ins.off)
		if ins.target >= 0 {
			if t := uint32(ins.target); !inside && in(t) {
				entries[t] = true
			}
		}
		if ins.indirectJump && !inside {
			indirectOutside = true
		}
		if inside && (k == 0 || (!in(insts[k-1].off) && insts[k-1].fallsThrough)) {
			entries[ins.off] = true
		}
	}
	if indirectOutside {
		for k := 1; k < len(insts); k++ {
			if in(insts[k].off) && !insts[k-1].fallsThrough && !targeted[insts[k].off] {
				entries[insts[k].off] = true
			}
		}
	}
	out := make([]uint32, 0, len(entries))
	for off := range entries {
		out = append(out, off)
	}
	slices.Sort(out)
	return out
}

// jumpTargets returns the offsets that direct jumps of insts target.
func jumpTargets(insts []inst) map[uint32]bool {
	targeted := map[uint32]bool{}
	for _, x := range insts {
		if x.target >= 0 {
			targeted[uint32(x.target)] = true
		}
	}
	return targeted
}

// descendants returns, indexed by inline tree index, whether the entry is
// i or nested in i. It runs in time linear in the tree's size, and takes
// entries in a parent cycle (a corrupt tree) as not nested.
func descendants(tree []Inline, i int) []bool {
	const (
		unknown = iota
		visiting
		yes
		no
	)
	state := make([]uint8, len(tree))
	var path []int
	for j := range tree {
		path = path[:0]
		res := uint8(no)
		for k := j; k >= 0 && k < len(tree); k = tree[k].Parent {
			if k == i {
				res = yes
				break
			}
			if s := state[k]; s != unknown {
				if s != visiting {
					res = s
				}
				break
			}
			state[k] = visiting
			path = append(path, k)
		}
		for _, k := range path {
			state[k] = res
		}
	}
	in := make([]bool, len(tree))
	for j, s := range state {
		in[j] = s == yes || j == i
	}
	return in
}

// ancestors returns, indexed by inline tree index, whether the entry is a
// call that i is nested in. A parent cycle (a corrupt tree) ends the walk.
func ancestors(tree []Inline, i int) []bool {
	out := make([]bool, len(tree))
	for k := tree[i].Parent; k >= 0 && k < len(tree) && !out[k] && k != i; k = tree[k].Parent {
		out[k] = true
	}
	return out
}

// inlineRanges returns the decoded InlTreeIndex table of Funcs[fi].
func (b *Binary) inlineRanges(fi int) ([]pcRange, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rs, ok := b.inlRanges[fi]; ok {
		return rs, nil
	}
	r, ok := b.tab.fn(b.funcOff[fi])
	if !ok {
		return nil, ErrCorrupt
	}
	fn := &b.Funcs[fi]
	rs := decodePCValue(nil, b.tab.pctab, r.pcdata(pcdataInlTreeIndex), fn.End-fn.Entry, b.tab.minLC)
	if b.inlRanges == nil {
		b.inlRanges = map[int][]pcRange{}
	}
	b.inlRanges[fi] = rs
	return rs, nil
}

// funcCode is what InlineSites needs of the code of a function with
// inlined calls, the same for each of its copies: its instructions and
// the edges between them.
type funcCode struct {
	insts       []inst
	jumpTargets map[uint32]bool // offsets that direct jumps target
	// target is, by instruction, the index of a direct jump's target, or
	// -1; roots the indexes where execution enters the function: its
	// entry, and its deferreturn point (where the runtime resumes after a
	// recover) when it has one.
	target []int
	roots  []int
	// indirectTargets is, when the function has an indirect jump (a
	// switch's jump table), the instructions it may jump to: those that
	// follow one that cannot fall through and that no direct jump
	// targets.
	indirectTargets []int
	// idom is what dominators returns, computed once under domOnce.
	domOnce sync.Once
	idom    []int
}

// funcCode returns the decoded code of Funcs[fi] and what follows from it
// for InlineSites, cached. It decodes without holding b.mu, so two callers
// may both decode a function; the first to store its result wins.
func (b *Binary) funcCode(fi int) (*funcCode, error) {
	b.mu.Lock()
	fc, ok := b.inlCode[fi]
	b.mu.Unlock()
	if ok {
		return fc, nil
	}
	fn := &b.Funcs[fi]
	code, err := b.im.readAddr(fn.Entry, fn.End-fn.Entry)
	if err != nil {
		return nil, err
	}
	var deferreturn uint32
	if r, ok := b.tab.fn(b.funcOff[fi]); ok {
		deferreturn = r.deferreturn()
	}
	fc = newFuncCode(b.decodeCode(fn.Entry, code), deferreturn)
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.inlCode[fi]; ok {
		return prev, nil
	}
	if b.inlCode == nil {
		b.inlCode = map[int]*funcCode{}
	}
	b.inlCode[fi] = fc
	return fc, nil
}

// newFuncCode returns the funcCode of a function whose decoded code is
// insts and whose deferreturn point is at offset deferreturn (0 for none).
func newFuncCode(insts []inst, deferreturn uint32) *funcCode {
	fc := &funcCode{
		insts:       insts,
		jumpTargets: jumpTargets(insts),
		target:      make([]int, len(insts)),
	}
	indirect := false
	for k, x := range insts {
		fc.target[k] = -1
		if x.target >= 0 {
			if t, ok := instIndex(insts, uint32(x.target)); ok {
				fc.target[k] = t
			}
		}
		indirect = indirect || x.indirectJump
	}
	if len(insts) > 0 {
		fc.roots = append(fc.roots, 0)
	}
	if k, ok := instIndex(insts, deferreturn); ok && deferreturn != 0 {
		fc.roots = append(fc.roots, k)
	}
	if indirect {
		for k := 1; k < len(insts); k++ {
			if !insts[k-1].fallsThrough && !fc.jumpTargets[insts[k].off] {
				fc.indirectTargets = append(fc.indirectTargets, k)
			}
		}
	}
	return fc
}

// successors calls yield with the index of each instruction that may run
// right after instruction k.
func (fc *funcCode) successors(k int, yield func(int)) {
	x := fc.insts[k]
	if x.fallsThrough && k+1 < len(fc.insts) {
		yield(k + 1)
	}
	if t := fc.target[k]; t >= 0 {
		yield(t)
	}
	if x.indirectJump {
		for _, t := range fc.indirectTargets {
			yield(t)
		}
	}
}

// inst is one decoded instruction of a function.
type inst struct {
	off, len     uint32
	target       int64 // offset of a direct jump's target within the function, or -1
	fallsThrough bool
	indirectJump bool
	// For entryProbe: whether the kernel emulates a probe on it (see
	// emulated); whether it transfers control (or does not decode), may
	// fault, or reads or writes RSP or RBP.
	emulated, branches, mayFault, writesFrame bool
	// move is whether it only moves a value between registers and the
	// frame's stack slots, or puts a constant in a register (see isMove).
	move bool
}

// decodeCode decodes a function's code linearly. Bytes that do not decode
// are taken as one-byte instructions that fall through.
func (b *Binary) decodeCode(entry uint64, code []byte) []inst {
	var out []inst
	for off := 0; off < len(code); {
		ins := inst{off: uint32(off), len: 1, target: -1, fallsThrough: true, branches: true}
		x, err := x86asm.Decode(code[off:], 64)
		if err == nil && x.Len > 0 {
			ins.len = uint32(x.Len)
			ins.branches = false
			next := int64(off + x.Len)
			switch x.Op {
			case x86asm.JMP:
				ins.fallsThrough = false
				ins.branches = true
				if rel, ok := x.Args[0].(x86asm.Rel); ok {
					ins.target = next + int64(rel)
				} else {
					ins.indirectJump = true
				}
			case x86asm.RET, x86asm.UD2, x86asm.INT, x86asm.HLT:
				ins.fallsThrough = false
				ins.branches = true
			case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE,
				x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO,
				x86asm.JP, x86asm.JS, x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ,
				x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
				ins.branches = true
				if rel, ok := x.Args[0].(x86asm.Rel); ok {
					ins.target = next + int64(rel)
				}
			case x86asm.CALL:
				ins.branches = true
				if rel, ok := x.Args[0].(x86asm.Rel); ok {
					if callee := b.FuncAt(entry + uint64(next+int64(rel))); callee != nil && noReturn(callee.Name) {
						ins.fallsThrough = false
					}
				}
			}
			if x.Op == x86asm.INT && len(code) > off && code[off] == 0xcc {
				ins.fallsThrough = false
			}
			if ins.target < 0 || ins.target >= int64(len(code)) {
				ins.target = -1
			}
			ins.classify(x, code[off:off+x.Len])
		}
		out = append(out, ins)
		off += int(ins.len)
	}
	return out
}

// noReturn reports whether the runtime function never returns to its
// caller, so that the instruction after a call of it is not its successor.
func noReturn(name string) bool {
	switch name {
	case "runtime.throw", "runtime.fatal", "runtime.gopanic", "runtime.goexit", "runtime.abort":
		return true
	}
	return strings.HasPrefix(name, "runtime.panic") || strings.HasPrefix(name, "runtime.goPanic")
}

func funcName(f *Func) string {
	if f == nil {
		return "<nil>"
	}
	return f.Name
}
