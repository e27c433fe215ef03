package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/safefile"
)

// observeFlags are the flags of run and attach.
type observeFlags struct {
	outputFlags
	count    bool
	targets  string
	stream   string
	maxSites int
	goTools  bool // run only
	server   serverFlags
}

func (o *observeFlags) register(fs *flag.FlagSet, defaultFailOn, reportTo string) {
	o.outputFlags.register(fs, defaultFailOn, reportTo)
	fs.BoolVar(&o.count, "count", false, "count every call of a vulnerable function instead of stopping at its first: the program slows down by about 1 to 4 µs per call of a watched function for as long as it runs, so a function called a million times costs 1 to 4 seconds more; without -count each probe goes away after its first hit and the program runs at full speed afterwards")
	fs.StringVar(&o.targets, "targets", "", "watch only the targets listed in `FILE`, one per line: an OSV ID (GO-2021-0113) or an alias (CVE-2021-38561, GHSA-...), a symbol (golang.org/x/text/language.Parse), a package (golang.org/x/text/language), or * for all; # starts a comment. The file is re-read when it changes; the symbols left out are reported not_watched")
	fs.StringVar(&o.stream, "stream", "", "write each hit as a line of JSON to `FILE` as it happens (- for standard error)")
	fs.IntVar(&o.maxSites, "max-sites", observe.DefaultMaxSites, "refuse to arm more than this many probe sites in one process")
	o.server.register(fs)
}

// validate checks the flags: the output's, and -server's with its token.
func (o *observeFlags) validate() error {
	if err := o.outputFlags.validate(); err != nil {
		return err
	}
	return o.server.validate(o.db.insecure)
}

// session is an observation in progress with its output streams.
type session struct {
	*observe.Session
	stream *eventStream
}

// startSession opens the database and starts an observation session; it
// analyses programs, the executables about to run, meanwhile.
func startSession(ctx context.Context, e *env, o *observeFlags, mode string, programs ...string) (*session, error) {
	if o.maxSites <= 0 {
		return nil, usageError("-max-sites %d: must be positive", o.maxSites)
	}
	db, err := o.db.open(e)
	if err != nil {
		return nil, err
	}
	var stream *eventStream
	if o.stream != "" {
		stream, err = openStream(e, o.stream)
		if err != nil {
			return nil, err
		}
	}
	opts := observe.Options{
		Logger: e.log,
		Report: report.Report{
			Tool: report.Tool{Name: "reach", Version: version()},
			DB:   report.DB{Source: db.Source()},
			Mode: mode,
		},
		MaxSites: o.maxSites,
		Targets:  observe.SelectAll(),
		Follow:   mode == "run",
		Programs: programs,
		GoTools:  o.goTools,
	}
	if dir, err := os.UserCacheDir(); err == nil {
		opts.CacheDir = filepath.Join(dir, "reach", "kernel")
	}
	if o.count {
		opts.Mode = probe.Count
	}
	if stream != nil {
		opts.OnHit = stream.write
	}
	// Read the database's index while the probe engine loads.
	var (
		modified time.Time
		infoErr  error
		wg       sync.WaitGroup
	)
	wg.Go(func() { modified, infoErr = db.Modified(ctx) })
	s, err := observe.New(ctx, db, opts)
	wg.Wait()
	if err != nil {
		stream.close()
		return nil, err
	}
	if infoErr != nil {
		// Without the database nothing could be matched: say so before
		// the program runs unobserved.
		s.Close()
		stream.close()
		return nil, infoErr
	}
	s.SetDB(report.DB{Source: db.Source(), Modified: modified})
	for _, w := range db.Warnings() {
		s.Note(w)
	}
	if o.targets != "" {
		// The watcher lives as long as the session: Close stops it.
		if err := s.WatchTargets(context.WithoutCancel(ctx), o.targets, 0); err != nil {
			s.Close()
			stream.close()
			return nil, fmt.Errorf("-targets: %w", err)
		}
	}
	return &session{Session: s, stream: stream}, nil
}

// finish stops the session and returns its final report. The report is
// returned even when stopping failed.
func (s *session) finish() (*report.Report, error) {
	cerr := s.Close()
	r, err := s.Report(context.Background())
	s.stream.close()
	if cerr != nil {
		return r, cerr
	}
	return r, err
}

// eventStream writes hits as NDJSON. It is safe for concurrent use.
type eventStream struct {
	mu sync.Mutex
	w  io.Writer
	f  *os.File // nil for standard error
}

// openStream opens the -stream output: standard error for "-", a named
// standard stream as itself, else a regular file appended to (see
// safefile.OpenAppend: no symbolic link, FIFO or device, and no other
// user's file in a sticky directory).
func openStream(e *env, name string) (*eventStream, error) {
	if name == "-" {
		return &eventStream{w: e.stderr}, nil
	}
	if w := e.stdStream(name); w != nil {
		return &eventStream{w: w}, nil
	}
	f, err := safefile.OpenAppend(name, 0o644)
	if err != nil {
		return nil, fmt.Errorf("-stream: %w; give a regular file, or - for standard error", err)
	}
	return &eventStream{w: f, f: f}, nil
}

func (s *eventStream) write(ev observe.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Escaped as the reports are: the stream is often a terminal. A
	// failed write must not stop observation.
	report.EncodeJSONLine(s.w, ev)
}

func (s *eventStream) close() {
	if s != nil && s.f != nil {
		s.f.Close()
	}
}

// writeObserved writes the report of run or attach: to -o when given, else
// to w.
func writeObserved(e *env, o *outputFlags, w io.Writer, r *report.Report) error {
	if o.out != "" {
		return writeReport(e, o, r)
	}
	render, err := o.renderer(r)
	if err != nil {
		return err
	}
	return render(w, r)
}
