// Package binfo reads what reach needs to know about a Go binary: its build
// information (Go version, main module, dependencies), its function table and
// inline tree from the pclntab (present even in stripped binaries), DWARF when
// present, and the ELF layout that turns addresses into file offsets for
// uprobes. It also symbolizes program counters into logical, inline-aware
// frames.
//
// A Binary is immutable after Open and safe for concurrent use.
package binfo

import "errors"

// ErrNotGoBinary reports a file that is not a Go binary: not ELF, or ELF
// without Go build information and pclntab.
var ErrNotGoBinary = errors.New("not a Go binary")

// ErrUnsupported reports a Go binary that reach cannot analyse, such as one
// for an architecture other than amd64 or with a pclntab format older than
// Go 1.18.
var ErrUnsupported = errors.New("unsupported binary")

// ErrCorrupt reports a Go binary whose structures are damaged or truncated.
var ErrCorrupt = errors.New("corrupt binary")

// Module is a Go module the binary was built from.
type Module struct {
	Path    string
	Version string
	Sum     string
	Replace *Module // the replacement, if the module was replaced
	// Inferred is whether the module comes from the source file paths in
	// the pclntab (a module cache directory, path@version), not from the
	// build information, which does not list it: test binaries list no
	// dependencies. For the main module, only its path is inferred.
	Inferred bool
}

// Setting is one build setting (key=value) from the build information.
type Setting struct {
	Key, Value string
}

// Range is a half-open range of program counters [Lo, Hi).
type Range struct {
	Lo, Hi uint64
}

// Func is one function in the binary's pclntab.
type Func struct {
	// Name is the function's name as the runtime reports it, such as
	// "main.main", "example.com/p.(*T).M" or "example.com/p.Map[...]".
	Name string
	// Entry is the link-time virtual address of the first instruction, and
	// End the address just past its last one.
	Entry, End uint64
	// Offset is the file offset of Entry.
	Offset uint64
	// Inlines is the function's inline tree: the calls inlined into it,
	// in pclntab order. Nil when nothing is inlined.
	Inlines []Inline
}

// Inline is one call inlined into a function: a copy of another function's
// body within the caller's code.
type Inline struct {
	// Func is the inlined function's name, as the runtime reports it.
	Func string
	// Parent is the index in the same Inlines slice of the inlined call that
	// contains this one, or -1 when the call was made by the outer function.
	Parent int
	// CallFile and CallLine are where the call was written.
	CallFile string
	CallLine int
	// CallPC is the link-time address of the instruction that stands for
	// the call in the caller's code: the compiler's inline mark, which the
	// runtime's tracebacks use as the call's PC. It belongs to the caller
	// (its frames end with the caller at CallLine). It is no probe site:
	// the compiler makes the first instruction of the function at the
	// call's line the mark, which may be on another path than the call,
	// outside a loop that makes it, or after a call that never returns
	// (see InlineSites). 0 when the pclntab does not give it.
	CallPC uint64
}

// SiteKind says which instruction a probe site is on.
type SiteKind int

const (
	// SiteEntry is a function's first instruction: for frameless functions,
	// and for functions whose prologue has no push of the frame pointer.
	SiteEntry SiteKind = iota
	// SitePushBP is a function's PUSH RBP, just after its stack-bound check:
	// the kernel emulates it, and morestack does not run it twice.
	SitePushBP
	// SiteInline is where execution enters an inlined copy, in the code
	// of the function it was inlined into. That function's frame is most
	// often set up there; not at about 3% of sites (in frameless
	// functions, or before a prologue), where the frame pointer is still
	// its caller's.
	SiteInline
)

func (k SiteKind) String() string {
	switch k {
	case SiteEntry:
		return "entry"
	case SitePushBP:
		return "push-bp"
	case SiteInline:
		return "inline"
	}
	return "unknown"
}

// Site is an instruction to put a probe on.
type Site struct {
	Kind   SiteKind
	PC     uint64 // link-time virtual address
	Offset uint64 // file offset, as uprobes take it
	// Call is, at an inline site, the entry of the inlined copy that the
	// site stands for: an instruction of the copy, whose frames are the
	// inlined function's (or a call nested in it), called from the
	// caller at the call's line. A hit symbolizes as Call. PC is the entry
	// itself, or an instruction shortly before or after it that runs
	// exactly once each time the entry runs (see InlineSites). 0 at other
	// sites.
	Call uint64
	// Uncounted is whether hits here show only that the watched code ran,
	// not how often it was called: the site can run more than once per
	// call (an inlined copy's entry that the copy's own code loops back
	// to), or stands for code other than the call itself (a closure of
	// the function). Counted sites run at most once per call.
	Uncounted bool
	// Inexact is whether some calls that this site watches may pass no
	// counted site: hits then count at least, not exactly, the calls.
	Inexact bool
}

// Frame is one logical frame of a program counter: the function, file and
// line, with inlined calls expanded as runtime.CallersFrames does.
type Frame struct {
	Function string
	File     string
	Line     int
	// Inlined is true when this frame's code was inlined into the next
	// (outer) frame's function.
	Inlined bool
}
