package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The maps the BPF program uses.
//
//	counters:  hash (cookie u64, tgid u32, pad u32) -> executions u64
//	callsites: LRU hash (cookie u64, stack key u64, tgid u32, pad u32) ->
//	           executions u64, in count mode: a key's first execution is
//	           reported, the others only counted. The least recently used
//	           of more than MaxCallsites keys are evicted with their counts.
//	events:    ring buffer of records (see record.go)
//	lost:      array of one u64, records the ring buffer had no room for
type objects struct {
	counters  *ebpf.Map
	callsites *ebpf.Map
	events    *ebpf.Map
	lost      *ebpf.Map
}

const (
	counterKeySize  = 16
	callsiteKeySize = 24
)

func newObjects(opts Options) (_ *objects, err error) {
	o := &objects{}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	o.counters, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "reach_counters", Type: ebpf.Hash,
		KeySize: counterKeySize, ValueSize: 8, MaxEntries: uint32(opts.MaxCounters),
	})
	if err != nil {
		return nil, fmt.Errorf("create counter map: %w", err)
	}
	o.callsites, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "reach_callsites", Type: ebpf.LRUHash,
		KeySize: callsiteKeySize, ValueSize: 8, MaxEntries: MaxCallsites,
	})
	if err != nil {
		return nil, fmt.Errorf("create callsite map: %w", err)
	}
	o.events, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "reach_events", Type: ebpf.RingBuf, MaxEntries: uint32(opts.RingBytes),
	})
	if err != nil {
		return nil, fmt.Errorf("create ring buffer of %d bytes: %w", opts.RingBytes, err)
	}
	o.lost, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "reach_lost", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create lost-record map: %w", err)
	}
	return o, nil
}

func (o *objects) close() {
	for _, m := range []*ebpf.Map{o.counters, o.callsites, o.events, o.lost} {
		if m != nil {
			m.Close()
		}
	}
}

// loadProgram loads the hit handler, for uprobe_multi links when multi is
// true and for classic uprobes otherwise.
func (o *objects) loadProgram(multi bool) (*ebpf.Program, error) {
	spec := &ebpf.ProgramSpec{
		Name:         "reach_hit",
		Type:         ebpf.Kprobe,
		Instructions: o.instructions(),
		License:      "Dual MIT/GPL",
	}
	if multi {
		spec.AttachType = ebpf.AttachTraceUprobeMulti
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return nil, fmt.Errorf("load BPF program: %w", err)
	}
	return prog, nil
}

// x86-64 struct pt_regs offsets.
const (
	regsBP = 4 * 8
	regsIP = 16 * 8
	regsSP = 19 * 8
)

// Stack slots of the BPF program, as offsets from R10.
const (
	fpCounterKey  = -16 // cookie at -16, tgid at -8, pad at -4
	fpOne         = -24 // u64 value 1 for counter inserts
	fpCallsiteKey = -48 // cookie at -48, stack key at -40, tgid at -32, pad at -28
	fpKey         = -40
	fpSeen        = -56  // u64 value 1 for callsite inserts
	fpCount       = -64  // the count after this hit
	fpFlags       = -72  // u32 record flags
	fpLostKey     = -76  // u32 0
	fpRet         = -88  // the return address
	fpFrame       = -104 // a stack frame: the caller's frame pointer, the return address
)

// stackKeyBit is set in every stack key (as an int64 immediate).
const stackKeyBit = -1 << 63

// stackMul is the odd multiplier of the stack key's hash: 2^64 / phi,
// 0x9e3779b97f4a7c15, as a signed 64-bit immediate.
const stackMul = -0x61c8864680b583eb

const (
	bpfNoExist    = 1
	bpfFUserStack = 1 << 8
)

// instructions returns the hit handler:
//
//	count this (cookie, process); in one-shot mode report the execution
//	that made the count 1; in count mode also count this (cookie, process,
//	stack key) and report the execution that made that count 1.
//
// The stack key hashes the return address and the user stack's innermost
// stackDepth frames: what user space picks the callsite from, so every
// execution counted under a key has the key's first execution's callsite,
// however far up the stack the application frame is. Its top bit is set,
// so that it never equals a user-space address. Reading the stack costs
// most of a hit's time: where the return address alone decides the
// callsite (the caller is the application's), user space adds the key
// (cookie, return address, process) to the map, and the program counts
// there without reading the stack. The cookie names the site, so at an
// inline site, whose return address is the enclosing function's, the key
// still tells apart the inlined copies (the calls themselves) of one
// function.
//
// R6 holds the context, R7 the cookie, R8 pid_tgid, R9 the record (and
// the frame pointer of the stack walk before).
func (o *objects) instructions() asm.Instructions {
	counters, callsites := o.counters.FD(), o.callsites.FD()
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetAttachCookie.Call(),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.StoreMem(asm.RFP, fpCounterKey, asm.R7, asm.DWord),
		asm.FnGetCurrentPidTgid.Call(),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.RSh.Imm(asm.R1, 32),
		asm.StoreMem(asm.RFP, fpCounterKey+8, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpCounterKey+12, 0, asm.Word),

		// Count: lookup, else insert 1, else (lost a race) lookup again.
		asm.LoadMapPtr(asm.R1, counters),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpCounterKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "insert"),
		asm.Mov.Imm(asm.R1, 1),
		fetchAdd(asm.R0, asm.R1),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpCount, asm.R1, asm.DWord),
		asm.Ja.Label("counted"),

		asm.Mov.Imm(asm.R1, 1).WithSymbol("insert"),
		asm.StoreMem(asm.RFP, fpOne, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, counters),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpCounterKey),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpOne),
		asm.Mov.Imm(asm.R4, bpfNoExist),
		asm.FnMapUpdateElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "retry"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpCount, asm.R1, asm.DWord),
		asm.Ja.Label("counted"),

		asm.LoadMapPtr(asm.R1, counters).WithSymbol("retry"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpCounterKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"), // the map is full
		asm.Mov.Imm(asm.R1, 1),
		fetchAdd(asm.R0, asm.R1),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpCount, asm.R1, asm.DWord),

		// In count mode, count per stack and report each new one
		// (user space tells the first of a site from the others);
		// otherwise report only the execution that made the count 1.
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("counted"),
		asm.And.Imm(asm.R1, cookieCountBit),
		asm.JNE.Imm(asm.R1, 0, "callsite"),
		asm.LoadMem(asm.R1, asm.RFP, fpCount, asm.DWord),
		asm.JNE.Imm(asm.R1, 1, "exit"),
	}
	ins = append(ins, readReturn("first")...)
	ins = append(ins,
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
		asm.StoreImm(asm.RFP, fpFlags, flagFirst, asm.Word),
		asm.Ja.Label("emit"),
	)
	// The lookup first keeps the hot path to one atomic add. Gating on
	// the insert alone means two threads racing through a site's first
	// execution cannot both report the same stack: the loser
	// counts in the winner's entry.
	ins = append(ins, readReturn("callsite")...)
	// The fast path: the return address alone is a key when user space
	// said so (Engine.KeyByReturn).
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpRet, asm.DWord),
		asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
	)
	ins = append(ins, callsiteKey(asm.R8)...)
	ins = append(ins, lookupCallsite(callsites)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "by_stack"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Ja.Label("exit"),
	)
	ins = append(ins, stackKey("by_stack")...)
	ins = append(ins, lookupCallsite(callsites)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "cs_insert"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Ja.Label("exit"),
	)
	ins = append(ins, insertCallsite(callsites, "cs_insert")...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "cs_new"),
	)
	// Lost the race to insert: count in the entry that won. It is gone
	// only if the map evicted it meanwhile; then this execution is not
	// counted per stack.
	ins = append(ins, lookupCallsite(callsites)...)
	ins = append(ins,
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Ja.Label("exit"),

		asm.StoreImm(asm.RFP, fpFlags, flagCallsite, asm.Word).WithSymbol("cs_new"),
		asm.Ja.Label("emit"),
	)
	ins = append(ins,
		// Emit a record.
		asm.LoadMapPtr(asm.R1, o.events.FD()).WithSymbol("emit"),
		asm.Mov.Imm(asm.R2, recordSize),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "lost"),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.StoreMem(asm.R9, 0, asm.R7, asm.DWord),
		asm.StoreMem(asm.R9, 8, asm.R8, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.R9, 16, asm.R0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, regsIP, asm.DWord),
		asm.StoreMem(asm.R9, 24, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, regsSP, asm.DWord),
		asm.StoreMem(asm.R9, 32, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, regsBP, asm.DWord),
		asm.StoreMem(asm.R9, 40, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpRet, asm.DWord),
		asm.StoreMem(asm.R9, 48, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpCount, asm.DWord),
		asm.StoreMem(asm.R9, 56, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpFlags, asm.Word),
		asm.StoreMem(asm.R9, 64, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpKey, asm.DWord),
		asm.StoreMem(asm.R9, 72, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.Add.Imm(asm.R2, recStack),
		asm.Mov.Imm(asm.R3, 8*stackDepth),
		asm.Mov.Imm(asm.R4, bpfFUserStack),
		asm.FnGetStack.Call(),
		asm.StoreMem(asm.R9, 68, asm.R0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),
		asm.Ja.Label("exit"),

		asm.StoreImm(asm.RFP, fpLostKey, 0, asm.Word).WithSymbol("lost"),
		asm.LoadMapPtr(asm.R1, o.lost.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpLostKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),

		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	return ins
}

// fetchAdd is *(u64 *)dst += src, with the old value left in src.
//
// cilium/ebpf v0.22 encodes the atomic operation into the immediate after
// it has taken the immediate to marshal, so asm.FetchAdd.Mem alone comes out
// as a plain atomic add (src keeps its value): set the immediate here.
func fetchAdd(dst, src asm.Register) asm.Instruction {
	ins := asm.FetchAdd.Mem(dst, src, asm.DWord, 0)
	ins.Constant = int64(asm.FetchAdd >> 8)
	return ins
}

// stackKey stores at fpKey a hash of the return address at fpRet and of
// the return addresses of the user stack's innermost stackDepth frames,
// walked by frame pointers from BP as the kernel's own stack walk
// (bpf_get_stack, whose frames user space picks the callsite from) does:
// each frame holds the caller's frame pointer, then the return address.
// The walk stops at a null frame pointer or an unreadable frame, and is
// unrolled. Reading two words per frame costs a fraction of
// bpf_get_stack, which was most of a counted call's time.
func stackKey(label string) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMem(asm.R1, asm.RFP, fpRet, asm.DWord).WithSymbol(label),
		asm.LoadImm(asm.R2, stackMul, asm.DWord),
	}
	ins = append(ins, mixKey(asm.R1, asm.R2, asm.R3)...)
	ins = append(ins,
		asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
		asm.LoadMem(asm.R9, asm.R6, regsBP, asm.DWord),
	)
	// R9 is the frame pointer; the hash is at fpKey: the helper calls
	// clobber R1 to R5.
	for range stackDepth {
		ins = append(ins,
			asm.JEq.Imm(asm.R9, 0, "sk_done"),
			asm.Mov.Reg(asm.R1, asm.RFP),
			asm.Add.Imm(asm.R1, fpFrame),
			asm.Mov.Imm(asm.R2, 16),
			asm.Mov.Reg(asm.R3, asm.R9),
			asm.FnProbeReadUser.Call(),
			asm.JNE.Imm(asm.R0, 0, "sk_done"),
			asm.LoadMem(asm.R1, asm.RFP, fpKey, asm.DWord),
			asm.LoadMem(asm.R2, asm.RFP, fpFrame+8, asm.DWord),
			asm.Xor.Reg(asm.R1, asm.R2),
			asm.LoadImm(asm.R2, stackMul, asm.DWord),
		)
		ins = append(ins, mixKey(asm.R1, asm.R2, asm.R3)...)
		ins = append(ins,
			asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
			asm.LoadMem(asm.R9, asm.RFP, fpFrame, asm.DWord),
		)
	}
	return append(ins,
		asm.LoadMem(asm.R1, asm.RFP, fpKey, asm.DWord).WithSymbol("sk_done"),
		asm.LoadImm(asm.R2, stackKeyBit, asm.DWord),
		asm.Or.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
	)
}

// mixKey mixes the hash in h: h *= mul (a register); h ^= h >> 29. tmp is
// clobbered.
func mixKey(h, mul, tmp asm.Register) asm.Instructions {
	return asm.Instructions{
		asm.Mul.Reg(h, mul),
		asm.Mov.Reg(tmp, h),
		asm.RSh.Imm(tmp, 29),
		asm.Xor.Reg(h, tmp),
	}
}

// callsiteKey completes the callsite key around the stack key at fpKey:
// the cookie and the process ID from pidTgid.
func callsiteKey(pidTgid asm.Register) asm.Instructions {
	return asm.Instructions{
		asm.StoreMem(asm.RFP, fpCallsiteKey, asm.R7, asm.DWord),
		asm.Mov.Reg(asm.R1, pidTgid),
		asm.RSh.Imm(asm.R1, 32),
		asm.StoreMem(asm.RFP, fpCallsiteKey+16, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpCallsiteKey+20, 0, asm.Word),
	}
}

// lookupCallsite looks the callsite key up: R0 is its counter, or 0.
func lookupCallsite(callsites int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, callsites),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpCallsiteKey),
		asm.FnMapLookupElem.Call(),
	}
}

// insertCallsite inserts the callsite key with the count 1 unless present;
// R0 is 0 when it was not.
func insertCallsite(callsites int, label string) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R1, 1).WithSymbol(label),
		asm.StoreMem(asm.RFP, fpSeen, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, callsites),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpCallsiteKey),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpSeen),
		asm.Mov.Imm(asm.R4, bpfNoExist),
		asm.FnMapUpdateElem.Call(),
	}
}

// readReturn reads the return address into fpRet: [SP] at entry and push-bp
// sites, [BP+8] at inline sites. bpf_probe_read_user zeroes it on failure.
func readReturn(label string) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol(label),
		asm.RSh.Imm(asm.R1, cookieKindShift),
		asm.And.Imm(asm.R1, cookieKindMask),
		asm.LoadMem(asm.R3, asm.R6, regsSP, asm.DWord),
		asm.JNE.Imm(asm.R1, int32(SiteInline), label+"_read"),
		asm.LoadMem(asm.R3, asm.R6, regsBP, asm.DWord),
		asm.Add.Imm(asm.R3, 8),
		asm.Mov.Reg(asm.R1, asm.RFP).WithSymbol(label + "_read"),
		asm.Add.Imm(asm.R1, fpRet),
		asm.Mov.Imm(asm.R2, 8),
		asm.FnProbeReadUser.Call(),
	}
}
