// Package observe watches running Go programs for executions of vulnerable
// functions: the runtime half of `reach run` and `reach attach`.
//
// A Session analyses each observed process's executable once (binfo, match
// against the vulnerability database: package analysis), arms one probe group per
// vulnerable symbol in the process, symbolizes the hits the probe engine
// reports (inline-aware) and records them into a report. The set of
// watched targets can change while processes run (SetTargets, WatchTargets).
// Run starts a program with its probes armed before it executes any Go
// code, and follows the programs it starts in turn.
//
// Observation is honest about time: a process attached to while running is
// watched from the moment its probes are armed, and the report says when
// that was; calls before it are not reported.
package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/probe/execwatch"
	"github.com/reach-sca/reach/internal/report"
)

// DefaultMaxSites is the default cap on probe sites armed in one process.
const DefaultMaxSites = 4096

// ErrTooManySites reports a target set that needs more probe sites in a
// process than Options.MaxSites allows; nothing beyond the old set is
// armed.
var ErrTooManySites = errors.New("too many probe sites")

// ErrClosed reports use of a closed Session.
var ErrClosed = errors.New("session closed")

// Options configure a Session.
type Options struct {
	// Logger receives the session's logs; nil discards them.
	Logger *slog.Logger
	// Report holds the report's header: Tool, DB, Mode and Notes are
	// copied into the session's report. Binaries are the session's.
	Report report.Report
	// Mode is the probe mode: probe.OneShot (the default) removes a
	// symbol's probes from a process after its first hit there;
	// probe.Count keeps them and counts every call.
	Mode probe.Mode
	// MaxSites caps the probe sites armed in one process; 0 means
	// DefaultMaxSites.
	MaxSites int
	// Targets selects the symbols to watch; the zero value selects none,
	// use SelectAll() to watch everything.
	Targets Selection
	// ReapInterval is how often the session looks for observed processes
	// that exited; 0 means 500ms.
	ReapInterval time.Duration
	// Engine is the probe engine to use, which the session then owns and
	// closes; nil creates the eBPF engine.
	Engine probe.Engine
	// Follow starts following programs (see Run) in New, at the same time
	// as the probe engine, rather than at the first Run.
	Follow bool
	// CacheDir, when set, is a directory where the session may keep what
	// it learns of the running kernel across runs (see execwatch.Options).
	CacheDir string
	// Programs are executables to analyse while New starts the probe
	// engine, such as the program Run will start: its probes are then
	// armed as soon as it starts. A failure here is not New's: it is
	// reported when a process runs the file (the analysis, failed or not,
	// is kept for the file as any other).
	Programs []string
	// GoTools observes the programs of the Go toolchain (the go command,
	// compile, link, vet...: see ErrGoTool) like any other; by default
	// they run unobserved, and the report says which ran.
	GoTools bool
	// OnHit, when set, is called with every hit the session records, in
	// order, from the session's one hit-handling goroutine. It must not
	// block for long: hits wait while it runs.
	OnHit func(Event)
}

// Session observes Go processes. It is safe for concurrent use. Close
// stops every goroutine it started, removes every probe and waits.
type Session struct {
	log    *slog.Logger
	db     analysis.Entries
	engine probe.Engine
	rec    *report.Recorder
	opts   Options
	done   chan struct{}
	wg     sync.WaitGroup
	// lastHit is when the last hit was handled, in Unix ns.
	lastHit atomic.Int64
	// handled counts the hits handled, to compare with probe.Engine.Flush.
	handled atomic.Uint64

	// Lock order: spawnMu is taken alone; armingMu before mu; mu is
	// never held across an engine call, a /proc read or a wait (every hit
	// takes it). The engine's own locks come after armingMu and are never
	// taken under mu. The report recorder's lock (rec) is innermost: it
	// is taken under mu (so that the report sees arming and removal in
	// the session's order) and takes none of the session's.
	mu      sync.Mutex
	closed  bool
	targets Selection
	bins    map[fileID]*binary
	// analysing holds, for each file being analysed, a channel closed
	// when its analysis is done: a file is analysed once, and different
	// files at the same time (go test runs test binaries in parallel).
	analysing map[fileID]chan struct{}
	// byModules caches the database's entries by the module paths asked
	// for, joined by newlines.
	byModules map[string][]*osv.Entry
	nextBin   uint32
	groups    map[uint64]*group // every group of every analysed binary
	procs     map[int]*process
	watcher   *execwatch.Watcher // started by the first Run
	armingMu  sync.Mutex         // serializes arming changes (Add, SetTargets, exits); before mu
	spawnMu   sync.Mutex         // serializes Run's starts; taken with no other lock held

	// callsites maps each (group, process, site, stack key) the engine
	// reported in count mode to the callsite of its first hit, to apply
	// the engine's CallsiteCounts; under mu.
	callsites map[callsiteKey]report.Frame
	// streamed is what Options.OnHit was told of (see streamKind); under
	// mu.
	streamed map[streamKey]bool

	// selections are the target sets in force one after the other, and
	// observedAny tells whether a process was observed since the last
	// one began (see recordSelection); known caches which selectors the
	// database knows, and warned the warnings logged (see warnUnmatched).
	// All under mu.
	selections  []Selection
	observedAny bool
	known       map[string]bool
	warned      map[string]bool
	// goTools counts, by file name, the processes that ran a program of
	// the Go toolchain unobserved; under mu.
	goTools map[string]int
}

// New returns a session that reads OSV entries from db. It fails with
// probe.ErrPermission or probe.ErrNotSupported when eBPF probes cannot run
// here.
func New(ctx context.Context, db analysis.Entries, opts Options) (*Session, error) {
	if db == nil {
		return nil, errors.New("new observe session: no vulnerability database")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxSites <= 0 {
		opts.MaxSites = DefaultMaxSites
	}
	if opts.ReapInterval <= 0 {
		opts.ReapInterval = 500 * time.Millisecond
	}
	if opts.Mode != probe.OneShot && opts.Mode != probe.Count {
		return nil, fmt.Errorf("new observe session: unknown probe mode %d", opts.Mode)
	}
	log := opts.Logger.With("component", "observe")
	r := &report.Report{
		Schema:   report.Schema,
		Tool:     opts.Report.Tool,
		DB:       opts.Report.DB,
		Mode:     opts.Report.Mode,
		Started:  time.Now(),
		Binaries: []*report.Binary{},
		Notes:    append([]string(nil), opts.Report.Notes...),
	}
	if opts.Mode == probe.OneShot {
		r.Notes = append(r.Notes, OneShotNote)
	}
	s := &Session{
		log:     log,
		db:      db,
		rec:     report.NewRecorder(r),
		opts:    opts,
		done:    make(chan struct{}),
		targets: opts.Targets.clone(),
		bins:    map[fileID]*binary{},

		analysing: map[fileID]chan struct{}{},
		byModules: map[string][]*osv.Entry{},
		groups:    map[uint64]*group{},
		procs:     map[int]*process{},

		callsites: map[callsiteKey]report.Frame{},
		streamed:  map[streamKey]bool{},
		known:     map[string]bool{},
		warned:    map[string]bool{},
		goTools:   map[string]int{},
	}
	s.mu.Lock()
	s.recordSelection(opts.Targets)
	s.mu.Unlock()
	// Loading the exec watcher's programs takes as long as loading the
	// engine's: for Run, do both at once, and analyse the programs to
	// run meanwhile.
	var (
		watcher    *execwatch.Watcher
		watcherErr error
		wg         sync.WaitGroup
	)
	if opts.Follow {
		wg.Go(func() {
			watcher, watcherErr = newExecWatcher(opts)
		})
	}
	for _, p := range opts.Programs {
		wg.Go(func() {
			if err := s.prepare(ctx, p); err != nil {
				log.Debug("analyse a program ahead of its start", "path", p, "err", err)
			}
		})
	}
	eng := opts.Engine
	var engErr error
	if eng == nil {
		eng, engErr = probe.New(ctx, probe.Options{Logger: opts.Logger})
	}
	wg.Wait()
	if engErr != nil || watcherErr != nil {
		if watcher != nil {
			watcher.Close()
		}
		s.closeBinaries()
		if engErr == nil {
			eng.Close()
			return nil, fmt.Errorf("start following programs: %w", watcherErr)
		}
		return nil, fmt.Errorf("start the probe engine: %w", engErr)
	}
	s.engine = eng
	s.wg.Add(2)
	go s.consumeHits()
	go s.reap()
	if watcher != nil {
		s.watcher = watcher
		s.wg.Add(1)
		go s.handleExecs(watcher)
	}
	return s, nil
}

// OneShotNote is the report's note in one-shot mode, whose hits are not
// every call.
const OneShotNote = "one-shot mode: a symbol's probes are removed from a process at its first call, so its hits count only the calls seen until then, not every call; run with -count to count every call"

// SetDB sets the report's database.
func (s *Session) SetDB(db report.DB) { s.rec.SetDB(db) }

// Note adds a note to the report.
func (s *Session) Note(msg string) { s.rec.Note(msg) }

// Report returns a snapshot of the report, with exact hit counts read from
// the probe engine (see Sync) and a note on each target selector that
// selected nothing in the binaries analysed. Finished is set to now.
func (s *Session) Report(ctx context.Context) (*report.Report, error) {
	err := s.Sync(ctx)
	notes := s.unmatchedNotes(ctx)
	if n := s.goToolsNote(); n != "" {
		notes = append(notes, n)
	}
	r := s.rec.Snapshot()
	r.Notes = append(r.Notes, notes...)
	r.Finished = time.Now()
	return r, err
}

// Sync reads the probe engine's counters and sets every symbol's hit total
// to the number of executions of its counted sites (probe.Site.Uncounted)
// in the observed processes. In count mode it also sets each callsite's
// hits to the executions counted for the stacks whose first hit had that
// callsite; they add up to the total unless the kernel evicted stacks
// (beyond probe.MaxCallsites at a time) or a stack's first hit had no
// callsite (its record was lost, or nothing in its stack could be
// symbolized).
func (s *Session) Sync(ctx context.Context) error {
	var sites []probe.CallsiteCount
	if s.opts.Mode == probe.Count {
		// Before the totals, so that callsites never add up to more.
		var err error
		sites, err = s.engine.CallsiteCounts(ctx)
		if err != nil {
			if errors.Is(err, probe.ErrClosed) {
				return nil // Close synced for the last time
			}
			return fmt.Errorf("read callsite hit counts: %w", err)
		}
	}
	counts, err := s.engine.Counts(ctx)
	if err != nil {
		if errors.Is(err, probe.ErrClosed) {
			return nil
		}
		return fmt.Errorf("read hit counts: %w", err)
	}
	return errors.Join(s.applyCounts(counts), s.applyCallsiteCounts(sites))
}

func (s *Session) applyCounts(counts []probe.SiteCount) error {
	totals := map[*group]uint64{}
	s.mu.Lock()
	for _, c := range counts {
		// A scoped group's counts include its packages'
		// initialization: its hits are those recorded (scope.go).
		// Executions of uncounted sites show that the symbol ran, which
		// their first hit recorded, but are not calls of it.
		if g := s.groups[c.Group]; g != nil && !g.scoped() && c.Site < len(g.sites) && !g.sites[c.Site].Uncounted {
			totals[g] += c.Hits
		}
	}
	s.mu.Unlock()
	var errs []error
	for g, n := range totals {
		if err := s.rec.SetHits(g.ref, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close removes every probe, stops the session's goroutines, records the
// final hit counts and closes the analysed binaries. The report stays
// readable with Report.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	w := s.watcher
	s.mu.Unlock()
	close(s.done)

	ctx := context.Background()
	var errs []error
	if w != nil {
		if err := w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop following programs: %w", err))
		}
	}
	// Remove the probes first so that no new hit is counted, let the hit
	// reader catch up with the ring buffer, then count: the engine drops
	// its counters on Close.
	if err := s.disarmAll(ctx); err != nil {
		errs = append(errs, err)
	}
	s.drainHits(ctx)
	if err := s.Sync(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.engine.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the probe engine: %w", err))
	}
	s.wg.Wait()
	s.closeBinaries()
	return errors.Join(errs...)
}

// closeBinaries closes the analysed binaries.
func (s *Session) closeBinaries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bins {
		if b.bin != nil {
			b.bin.Close()
		}
	}
}

// goUnlessClosed runs f on a goroutine that Close waits for, or returns
// ErrClosed once Close has begun, so that no goroutine is added to s.wg
// while Close waits for them. (The goroutines of handleExecs are added
// while it runs, which Close also waits for.)
func (s *Session) goUnlessClosed(f func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.wg.Go(f)
	return nil
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
