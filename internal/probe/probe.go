// Package probe watches functions of running Go programs with eBPF uprobes.
//
// The caller hands an Engine groups of probe sites (file offsets in an
// executable) for one process; a group is everything that observes one
// target symbol: its entry and each of its inlined copies. The engine counts
// every execution of every site in the kernel and reports to user space only
// the first execution of each site in each process (and, in count mode, each
// new caller, whose executions it counts too), so the observed program is
// not slowed down by a reader woken on every call. In one-shot mode a group's probes are removed as soon as one
// of its sites has been hit.
//
// Probes only watch: the engine never writes to the observed program's memory
// or registers and never uses return probes. Probes are owned by the file
// descriptors of a keeper process that the engine starts (see
// RunKeeperIfRequested): when the engine's process exits, even by SIGKILL,
// the keeper closes them and the kernel removes them.
//
// The eBPF engine needs Linux, root or CAP_BPF with CAP_PERFMON, and a kernel
// with ring buffers and BPF cookies (5.15 or later); it uses uprobe_multi
// links (6.6, with per-process filtering fixed in 6.10) when the kernel has
// them and classic per-site uprobes otherwise.
package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reach-sca/reach/internal/probe/bpfenv"
)

// ErrNotSupported reports a platform or kernel that lacks a feature the
// engine needs; the error names the feature. It is bpfenv's: the exec
// watcher (package execwatch) fails with the same.
var ErrNotSupported = bpfenv.ErrNotSupported

// ErrPermission reports missing privileges; the error names them. It is
// bpfenv's, as ErrNotSupported.
var ErrPermission = bpfenv.ErrPermission

// ErrArmed reports a group that is already armed in the process.
var ErrArmed = errors.New("group already armed")

// ErrNotArmed reports a group that is not armed in the process.
var ErrNotArmed = errors.New("group not armed")

// GroupError is the failure of one group of an Arm call: Arm's error joins
// one for each group it could not arm (see FailedGroups). Errors that are
// no GroupError mean that Arm armed nothing.
type GroupError struct {
	Group uint64
	Err   error
}

func (e *GroupError) Error() string { return e.Err.Error() }

func (e *GroupError) Unwrap() error { return e.Err }

// FailedGroups returns the groups that an error of Arm says failed, with
// their errors, and whether the error is only about those groups. When it
// is not (ok is false), Arm armed none of the groups.
func FailedGroups(err error) (failed map[uint64]error, ok bool) {
	failed = map[uint64]error{}
	ok = true
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if u, isJoin := err.(interface{ Unwrap() []error }); isJoin {
			for _, e := range u.Unwrap() {
				walk(e)
			}
			return
		}
		var ge *GroupError
		if errors.As(err, &ge) {
			failed[ge.Group] = err
			return
		}
		ok = false
	}
	walk(err)
	return failed, ok
}

// ErrClosed reports use of a closed engine.
var ErrClosed = errors.New("engine closed")

// SiteKind says which instruction a probe site is on. It decides where the
// engine reads the return address of a hit.
type SiteKind uint8

const (
	// SiteEntry is a function's first instruction. The return address is at
	// [SP].
	SiteEntry SiteKind = iota
	// SitePushBP is a function's PUSH RBP after its stack-bound check. The
	// push has not executed yet, so the return address is still at [SP].
	SitePushBP
	// SiteInline is where execution enters an inlined copy. The return
	// address reported is the enclosing function's, at [BP+8].
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
	return fmt.Sprintf("SiteKind(%d)", uint8(k))
}

// Site is one instruction to probe.
type Site struct {
	// Offset is the instruction's offset in the executable file, as uprobes
	// take it. It must be the first byte of an instruction: the kernel does
	// not check that, and a probe in the middle of an instruction corrupts
	// the program.
	Offset uint64
	// PC is the instruction's link-time virtual address. The engine only
	// uses it to compute Hit.Bias.
	PC   uint64
	Kind SiteKind
	// Uncounted marks a site whose executions are not calls of what the
	// group watches (such as a closure inside a vulnerable function): in
	// count mode the kernel reports only its first execution in a
	// process, as in one-shot mode, and keys no callsite counts by it.
	// Counts counts its executions all the same.
	Uncounted bool
}

// Group is a set of sites that are armed and disarmed together, such as the
// entry and the inlined copies of one vulnerable function.
type Group struct {
	// ID is the caller's name for the group; it is unique per process.
	ID    uint64
	Sites []Site
}

// MaxSites is the largest number of sites in one group.
const MaxSites = 1 << 24

// Mode says what happens after a site's first hit.
type Mode uint8

const (
	// OneShot removes a group's probes after its first hit in the process.
	// Hits that arrive before the removal completes are counted.
	OneShot Mode = iota
	// Count keeps the probes and counts every execution. A Hit is reported
	// for the first execution of each site and for each new stack of a
	// site (see Hit.Key), except at Uncounted sites.
	Count
)

func (m Mode) String() string {
	switch m {
	case OneShot:
		return "one-shot"
	case Count:
		return "count"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ProcessSpec says what to probe in one process.
type ProcessSpec struct {
	// PID is the process to watch. 0 watches every process that runs Path,
	// which a one-shot group then leaves on the first hit in any of them.
	PID int
	// Path is the executable file the offsets refer to. /proc/PID/exe works
	// and survives the file being replaced on disk.
	Path   string
	Mode   Mode
	Groups []Group
}

// Hit is one reported execution of a site.
type Hit struct {
	PID, TID int
	Group    uint64
	Site     int // index in the group's Sites
	Kind     SiteKind
	// Callsite is false for the first hit of the site in the process, and
	// true for a later hit with a stack not seen before (count mode only;
	// the kernel remembers the last MaxCallsites stacks, so in a program
	// with more callsites one may be reported again). In count mode,
	// CallsiteCounts counts the executions of each (PID, Group, Site, Key)
	// such a hit reports.
	Callsite bool
	// Key names the hit's stack in count mode: a hash of Return and of the
	// user stack (its innermost 64 frames), with the top bit set, which the
	// kernel counts executions by. Executions with the same Key had the
	// same Return and Stack, so they have the same callsite. 0 in one-shot
	// mode and at Uncounted sites. See also Engine.KeyByReturn.
	Key uint64
	// Lost is true when the kernel could not queue the hit's record (the
	// ring buffer was full) and the engine found the hit in the counters:
	// only PID, Group, Site, Kind, Count and Time (when the engine found
	// it) are known. Rarely, when the record was in the reader's hands at
	// that moment, the same site is reported again with its record.
	Lost bool
	Time time.Time
	// IP, SP and BP are the registers at the probe, as runtime addresses.
	IP, SP, BP uint64
	// Bias is the load bias of the executable in the process: IP minus the
	// site's PC. Subtract it from runtime addresses to get link-time ones.
	Bias uint64
	// Return is the return address of the function being entered ([SP] at
	// entry and push-bp sites) or, at an inline site, of the function the
	// copy was inlined into ([BP+8]). 0 when it could not be read.
	// Symbolize it as Return-1.
	Return uint64
	// Stack is the user stack, innermost first (Stack[0] is IP), from the
	// kernel's frame pointer walk, at most 64 frames. At an entry site the
	// walk skips the direct caller (the callee's frame does not exist yet):
	// use Return. At a push-bp site it includes it.
	Stack []uint64
	// Count is the site's number of executions in the process when the hit
	// was recorded.
	Count uint64
}

// SiteCount is the number of executions of one site in one process.
type SiteCount struct {
	PID   int
	Group uint64
	Site  int
	Hits  uint64
}

// CallsiteCount is the number of executions of one site in one process
// with one stack, in count mode.
type CallsiteCount struct {
	PID   int
	Group uint64
	Site  int
	// Key names the stack the executions had, as Hit.Key does, or is
	// their return address, for the keys that KeyByReturn added.
	Key  uint64
	Hits uint64
}

// MaxCallsites is how many (site, process, stack) keys the kernel counts
// at a time in count mode. Beyond that it evicts the least recently used
// keys with their counts: a site's callsite counts then add up to less
// than its count, and an evicted key executed again is counted from 1 and
// reported again as a callsite Hit.
const MaxCallsites = 16384

// Options configures an engine.
type Options struct {
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Classic forces classic per-site uprobes even when the kernel has
	// uprobe_multi. Detaching them is slow (about 100 ms per site, serially).
	Classic bool
	// HitBuffer is the capacity of the Hits channel; 0 means 1024.
	HitBuffer int
	// RingBytes is the size of the kernel ring buffer; 0 means 1 MiB. It is
	// rounded up to a power of two of at least the page size.
	RingBytes int
	// MaxCounters is the number of (process, site) counters; 0 means 65536.
	MaxCounters int
	// SweepInterval is how often the engine looks for hits whose records
	// the kernel dropped; 0 means 1s.
	SweepInterval time.Duration
	// NoKeeper makes the engine create and hold its probe links itself
	// instead of in a keeper process (see RunKeeperIfRequested). Then, if
	// this process is killed with SIGKILL, the kernel may leave
	// breakpoints in the observed programs until they exit.
	NoKeeper bool
}

// Engine arms and disarms probes and reports hits. Implementations are safe
// for concurrent use.
type Engine interface {
	// Arm attaches spec's groups to the process. Each group is attached
	// as a whole or not at all; Arm returns the errors of the groups that
	// failed, joined, and leaves the others armed.
	Arm(ctx context.Context, spec ProcessSpec) error
	// Disarm removes a group's probes from the process and keeps its final
	// counts for Counts. It returns when the probes are gone.
	Disarm(ctx context.Context, pid int, group uint64) error
	// DisarmProcess removes every group armed in the process, in parallel,
	// as when it has exited, and keeps their final counts for Counts. When
	// the process is gone (or a zombie), its probes went with it and the
	// counts are final: the links are then closed in the background, and
	// Close does not wait for them either.
	DisarmProcess(ctx context.Context, pid int) error
	// Counts returns the executions counted so far for every site ever
	// armed, per process, sorted by PID, group and site. Sites never
	// executed are left out.
	Counts(ctx context.Context) ([]SiteCount, error)
	// CallsiteCounts returns the executions counted so far per site,
	// process and stack (Hit.Key) for every counted site ever armed in
	// count mode, sorted by PID, group, site and key; disarmed groups keep
	// their final counts. Each key's first execution was reported as a
	// Hit with that Key. A site's callsite counts add up to its count in
	// Counts unless the kernel evicted keys (see MaxCallsites). Read them
	// before Counts to see sums no larger than the counts.
	CallsiteCounts(ctx context.Context) ([]CallsiteCount, error)
	// KeyByReturn makes the kernel count the executions of a site in
	// count mode whose return address (Hit.Return) is ret under the key
	// ret, without reading the stack: for a return address that alone
	// decides the callsite, it makes each execution several times
	// cheaper. Executions counted before stay under their stack keys.
	// The key can be evicted as any other (see MaxCallsites); the kernel
	// then counts by stack again.
	KeyByReturn(ctx context.Context, pid int, group uint64, site int, ret uint64) error
	// Flush delivers to Hits every hit whose record the kernel has queued
	// when Flush is called, and returns the number of hits delivered on
	// Hits since the engine started. A caller that counts the hits it has
	// handled knows it has seen everything up to now when its count
	// reaches that number: after disarming, that is every hit.
	Flush(ctx context.Context) (uint64, error)
	// Hits delivers hits until Close, then is closed. The caller must keep
	// receiving: while it does not, the engine stops reading the kernel's
	// ring buffer, which then drops records (see Hit.Lost).
	Hits() <-chan Hit
	// Warm readies the kernel for arming probes in the executable at path
	// soon, such as once its analysis is done, and returns at once: the
	// kernel's first probe registration after a quiet spell waits for an
	// RCU grace period, which Warm pays in the background. Optional.
	Warm(ctx context.Context, path string)
	// Close removes every probe, stops every goroutine of the engine and
	// closes Hits.
	Close() error
}

// New returns the eBPF engine. It fails with ErrPermission or
// ErrNotSupported, naming what is missing, when the process or the kernel
// cannot run it.
func New(ctx context.Context, opts Options) (Engine, error) {
	return newEngine(ctx, opts)
}

func (spec *ProcessSpec) validate() error {
	if spec.PID < 0 {
		return fmt.Errorf("pid %d: must be 0 (every process) or a process ID", spec.PID)
	}
	if spec.Path == "" {
		return errors.New("no executable path: set ProcessSpec.Path to the program file or /proc/PID/exe")
	}
	if spec.Mode != OneShot && spec.Mode != Count {
		return fmt.Errorf("unknown mode %d", spec.Mode)
	}
	return nil
}

func (g *Group) validate() error {
	if len(g.Sites) == 0 {
		return fmt.Errorf("group %d: no sites", g.ID)
	}
	if len(g.Sites) > MaxSites {
		return fmt.Errorf("group %d: %d sites, more than %d: split it", g.ID, len(g.Sites), MaxSites)
	}
	for i, s := range g.Sites {
		if s.Offset == 0 {
			return fmt.Errorf("group %d site %d: file offset 0 is not code", g.ID, i)
		}
		if s.Kind > SiteInline {
			return fmt.Errorf("group %d site %d: unknown kind %d", g.ID, i, s.Kind)
		}
	}
	return nil
}

// RunKeeperIfRequested must be the first call in main (or TestMain) of
// every program that creates an Engine. The engine starts its own
// executable again as a keeper process, which creates and holds the probe
// links: when this process dies, even by SIGKILL, the keeper removes the
// probes in a healthy process (a process killed while it holds links makes
// the kernel fail to remove their breakpoints, which then stay in the
// observed program until it exits). In the keeper, RunKeeperIfRequested
// does the keeper's work and exits; elsewhere it returns at once. An engine
// in a program that does not call it runs without a keeper and logs a
// warning.
func RunKeeperIfRequested() { runKeeperIfRequested() }
