package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/procfs"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/safefile"
)

// fileID identifies an executable file: the same file, unchanged, has the
// same ID in every process that runs it.
type fileID struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
}

// binary is one analysed executable.
type binary struct {
	id     uint32
	path   string // the file's path when first seen
	bin    *binfo.Binary
	rb     *report.Binary
	groups []*group // one per matched symbol that has probe sites
	// unwatchable are the matched symbols without a probe site: their
	// executions cannot be seen (group.unwatched says why).
	unwatchable []*group
	// err is why the file cannot be observed, such as ErrNotGoBinary; the
	// other fields are then empty.
	err error
}

// group is the probe group of one vulnerable symbol of one binary.
type group struct {
	id     uint64
	bin    *binary
	osv    string
	alias  []string
	module string // the vulnerable module, as the finding names it
	pkg    string
	name   string // as the OSV entry spells it; "" for a whole package
	funcs  map[string]bool
	// inlined maps the PC that each inline site symbolizes as (an entry
	// of the inlined copy, binfo.Site.Call) to the inlined function it
	// stands for; marks maps the PC of each probe put after an entry to
	// the entry.
	inlined map[uint64]string
	marks   map[uint64]uint64
	sites   []probe.Site
	ref     report.SymbolRef
	// unwatched, when set, is why some or all of the symbol's code cannot
	// be watched: copies without a probe site.
	unwatched string
	// scope is the matched symbol when it stands for a whole package or
	// module (see scope.go), else nil.
	scope *match.Symbol
	// inexact is whether the group's hits count at least, not exactly,
	// the symbol's calls: some calls may pass no counted site (an Inexact
	// site, or copies that could not be watched).
	inexact bool
}

// selector returns the symbol as a Selection names it.
func (g *group) selector() string {
	if g.name == "" {
		return g.pkg
	}
	return g.pkg + "." + g.name
}

func groupID(bin uint32, i int) uint64 { return uint64(bin)<<32 | uint64(i) }

// analyse returns the analysis of the executable of process pid, from the
// cache when the file was seen before.
func (s *Session) analyse(ctx context.Context, pid int) (*binary, error) {
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	f, err := os.Open(exe)
	if err != nil {
		return nil, procErr(pid, err)
	}
	path, err := os.Readlink(exe)
	if err != nil {
		f.Close()
		return nil, procErr(pid, err)
	}
	path = strings.TrimSuffix(path, " (deleted)")
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, procErr(pid, err)
	}
	b, err := s.analyseFile(ctx, f, fi, exe, path)
	if b == nil && err != nil && !errors.Is(err, ErrClosed) {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return b, err
}

// prepare analyses the executable at path ahead of a process running it.
func (s *Session) prepare(ctx context.Context, path string) error {
	// Name it as /proc/PID/exe will.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	f, err := safefile.Open(path) // a FIFO would block os.Open for ever
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	_, err = s.analyseFile(ctx, f, fi, path, path)
	return err
}

// analyseFile returns the analysis of the executable open as f, from the
// cache when the file was seen before; it takes f over, and fi is its
// FileInfo. probePath is the path to warm the probe engine with; path
// names the file in the report. The analysed binary keeps f until the
// session closes.
func (s *Session) analyseFile(ctx context.Context, f *os.File, fi os.FileInfo, probePath, path string) (*binary, error) {
	opened := false // binfo owns f
	defer func() {
		if !opened {
			f.Close()
		}
	}()
	id, ok := statID(fi)
	if !ok {
		return nil, fmt.Errorf("cannot identify %s", path)
	}

	// Wait for an analysis of the same file in progress; one that was
	// cancelled is not kept, and this one tries again.
	s.mu.Lock()
	for {
		if b := s.bins[id]; b != nil {
			s.mu.Unlock()
			return b, b.err
		}
		busy := s.analysing[id]
		if busy == nil {
			break
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	done := make(chan struct{})
	s.analysing[id] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.analysing, id)
		s.mu.Unlock()
		close(done)
	}()
	b := &binary{path: path}
	if tool, ok := goTool(f); ok && !s.opts.GoTools {
		b.err = &goToolError{pkg: tool}
	} else {
		// The kernel's first probe registration after a quiet spell
		// waits for a grace period: let it pass while the analysis runs.
		if s.engine != nil { // nil while New prepares
			s.engine.Warm(ctx, probePath)
		}
		opened = true
		start := time.Now()
		defer func() { s.log.Debug("analysed", "binary", path, "took", time.Since(start)) }()
		bin, err := binfo.OpenFile(f, path)
		if err != nil {
			b.err = err
		} else {
			b.bin = bin
			if err := s.matchBinary(ctx, b); err != nil {
				if ctx.Err() != nil {
					bin.Close()
					return nil, err // do not cache a cancelled analysis
				}
				b.err = err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if b.bin != nil {
			b.bin.Close()
		}
		return nil, ErrClosed
	}
	s.nextBin++
	b.id = s.nextBin
	for i, g := range b.groups {
		g.id = groupID(b.id, i)
		s.groups[g.id] = g
	}
	s.bins[id] = b
	if b.rb != nil {
		s.rec.AddBinary(b.rb)
	}
	return b, b.err
}

// procErr explains a failure to read /proc/PID: a process that is gone, a
// kernel thread (no executable), or missing privileges.
func procErr(pid int, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		st, serr := procfs.ReadStat(pid)
		switch {
		case serr != nil:
			return fmt.Errorf("process %d: %w", pid, ErrExited)
		case st.Exited():
			return fmt.Errorf("process %d: %w (a zombie, not yet reaped)", pid, ErrExited)
		default:
			return fmt.Errorf("process %d has no executable: %w (a kernel thread?)", pid, ErrNotProgram)
		}
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("process %d: %w: reading /proc/%d/exe needs root or CAP_SYS_PTRACE over the process", pid, err, pid)
	}
	return fmt.Errorf("process %d: %w", pid, err)
}

// ErrNotProgram reports a process without a user-space program, such as a
// kernel thread.
var ErrNotProgram = errors.New("not a user-space program")

// ErrExited reports a process that is gone.
var ErrExited = errors.New("process exited")

// ErrNoProcess reports a process ID that names no process when reach
// looks: one that exited before, or never existed. It wraps ErrExited.
var ErrNoProcess = fmt.Errorf("no such process (%w, or never existed)", ErrExited)

// matchBinary matches b.bin against the database and builds its report
// binary and probe groups.
func (s *Session) matchBinary(ctx context.Context, b *binary) error {
	bin := b.bin
	db := analysis.EntriesFunc(func(ctx context.Context, paths []string) ([]*osv.Entry, error) {
		entries, err := s.entries(ctx, paths)
		if err != nil {
			return nil, fmt.Errorf("read vulnerability entries for %s: %w", bin.Path, err)
		}
		return entries, nil
	})
	a, err := analysis.Run(ctx, db, []*binfo.Binary{bin}, nil)
	if err != nil {
		return err
	}
	res, built := a.Results[0], a.Built
	b.rb = built.Binaries[0]
	for _, n := range built.Notes {
		s.rec.Note(n)
	}
	for _, f := range res.Findings {
		for _, sym := range f.Symbols {
			g := &group{
				bin:     b,
				osv:     f.Entry.ID,
				alias:   f.Entry.Aliases,
				module:  f.Module,
				pkg:     sym.Package,
				name:    sym.Name,
				funcs:   map[string]bool{},
				inlined: map[uint64]string{},
				marks:   map[uint64]uint64{},
				ref:     built.Refs[sym],
			}
			if sym.Scope != "" {
				g.scope = sym
			}
			for _, t := range sym.Funcs {
				g.funcs[t.Name] = true
				if t.SiteErr != nil {
					s.log.Warn("some copies of a vulnerable function cannot be watched", "binary", bin.Path, "func", t.Name, "err", t.SiteErr)
					if g.unwatched == "" {
						g.unwatched = fmt.Sprintf("some copies of %s cannot be probed: %v", t.Name, t.SiteErr)
					}
					g.inexact = true
				}
				for _, site := range t.Sites {
					if site.Kind == binfo.SiteInline {
						at := site.PC
						if site.Call != 0 {
							at = site.Call
						}
						g.inlined[at] = t.Name
						if at != site.PC {
							g.marks[site.PC] = at
						}
					}
					g.sites = append(g.sites, probe.Site{Offset: site.Offset, PC: site.PC, Kind: siteKind(site.Kind), Uncounted: site.Uncounted})
					g.inexact = g.inexact || site.Inexact
				}
			}
			g.sites = dedupSites(g.sites)
			if g.scoped() {
				// A method value of an unexported method is an entry point
				// whose method is not: keep the wrappers' entries.
				orderScopedSites(g.sites)
			} else {
				g.sites = dropWrapperEntries(bin, g.sites)
			}
			if len(g.sites) == 0 {
				s.log.Warn("vulnerable symbol is linked but has no probe site: its executions cannot be seen", "binary", bin.Path, "osv", g.osv, "symbol", g.selector())
				if g.unwatched == "" {
					g.unwatched = "no probe site could be placed in its code"
				}
				b.unwatchable = append(b.unwatchable, g)
				continue
			}
			b.groups = append(b.groups, g)
		}
	}
	return nil
}

// entries returns the OSV entries of the modules paths, from the session's
// cache when a binary with the same modules was analysed before, as the
// test binaries of one module mostly are.
func (s *Session) entries(ctx context.Context, paths []string) ([]*osv.Entry, error) {
	key := strings.Join(paths, "\n")
	s.mu.Lock()
	cached, ok := s.byModules[key]
	s.mu.Unlock()
	if ok {
		return cached, nil
	}
	entries, err := s.db.ByModules(ctx, paths)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.byModules[key] = entries
	s.mu.Unlock()
	return entries, nil
}

// dedupSites drops sites at the same offset (two targets can share a
// copy). A site that one target counts and another does not is uncounted:
// counting it could count what is not a call.
func dedupSites(sites []probe.Site) []probe.Site {
	slices.SortFunc(sites, func(a, b probe.Site) int {
		switch {
		case a.Offset < b.Offset:
			return -1
		case a.Offset > b.Offset:
			return 1
		}
		return 0
	})
	out := sites[:0]
	for _, s := range sites {
		if n := len(out); n > 0 && out[n-1].Offset == s.Offset {
			out[n-1].Uncounted = out[n-1].Uncounted || s.Uncounted
			continue
		}
		out = append(out, s)
	}
	return out
}

func siteKind(k binfo.SiteKind) probe.SiteKind {
	switch k {
	case binfo.SitePushBP:
		return probe.SitePushBP
	case binfo.SiteInline:
		return probe.SiteInline
	}
	return probe.SiteEntry
}

// dropWrapperEntries drops the entry sites of compiler-generated wrappers
// (method values "T.M-fm", pointer wrappers of value methods), whose code
// is "<autogenerated>": a wrapper calls the method, or holds an inlined copy
// of it, which the group watches already, so one call would count twice.
// A group of wrappers only keeps its sites.
func dropWrapperEntries(bin *binfo.Binary, sites []probe.Site) []probe.Site {
	var kept []probe.Site
	for _, s := range sites {
		if s.Kind != probe.SiteInline {
			if fr := bin.Frames(s.PC); len(fr) > 0 && fr[len(fr)-1].File == "<autogenerated>" {
				continue
			}
		}
		kept = append(kept, s)
	}
	if len(kept) == 0 {
		return sites
	}
	return kept
}
