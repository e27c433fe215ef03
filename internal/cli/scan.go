package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/safefile"
	"github.com/reach-sca/reach/internal/vulndb"
)

const scanDoc = `
Scan reads Go binaries (stripped and PIE included), matches their modules and
functions against the Go vulnerability database, and reports each affecting
vulnerability as linked (a vulnerable function is in the binary, as code of
its own or inlined into another) or imported (the module version is affected
but no vulnerable function is in the binary). Test binaries (go test -c),
whose build information lists no dependencies, get their modules and versions
from their source file paths; the report marks them inferred.`

// outputFlags are the flags every reporting command shares.
type outputFlags struct {
	db      dbFlags
	format  string
	out     string
	failOn  string
	srcRoot string
	v       bool
}

// register defines the flags on fs: -fail-on defaults to defaultFailOn,
// and the report goes to reportTo ("standard output") without -o.
func (o *outputFlags) register(fs *flag.FlagSet, defaultFailOn, reportTo string) {
	o.db.register(fs)
	fs.StringVar(&o.format, "format", "text", "report format: "+formatList())
	fs.StringVar(&o.out, "o", "", "write the report to `FILE` instead of "+reportTo)
	fs.StringVar(&o.failOn, "fail-on", defaultFailOn, "exit 3 when a finding has this status or a more severe one: reached, not_watched (run and attach: in the binary, not watched all the time), linked, imported or never")
	fs.StringVar(&o.srcRoot, "srcroot", "", "SARIF: the repository's `DIR`; files under it and its go.mod are given relative to it (%SRCROOT%), as GitHub code scanning needs (default: the directory of the main module's go.mod, when reach finds it at or above the working directory or the callsites' files)")
	fs.BoolVar(&o.v, "v", false, "log progress to standard error")
}

func (o *outputFlags) validate() error {
	if !slices.Contains(report.Formats, o.format) {
		return usageError("-format %q: use one of %s", o.format, formatList())
	}
	if o.failOn != "never" {
		if _, err := report.ParseStatus(o.failOn); err != nil {
			return usageError("-fail-on: %v, or never", err)
		}
	}
	return nil
}

func formatList() string {
	return strings.Join(report.Formats, ", ")
}

func runScan(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "scan", "[flags] BINARY...", scanDoc)
	var o outputFlags
	o.register(fs.FlagSet, "linked", "standard output")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("scan: no binary given: reach scan [flags] BINARY...")
	}
	e.setVerbose(o.v)
	started := time.Now()
	// A scan is a short batch job whose heap is mostly the function tables
	// it keeps to the end: collecting garbage less often saves a third of
	// its CPU time on a large binary and leaves its peak memory as it is.
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	db, err := o.db.open(e)
	if err != nil {
		return err
	}
	bins, unscanned, openErrs := openBinaries(ctx, e, fs.Args())
	defer closeBinaries(bins)
	a, err := analysis.Run(ctx, db, bins, &analysis.Options{Match: &match.Options{SkipSites: true}, Log: e.log})
	if err != nil {
		return err
	}
	r := newReport(ctx, "scan", db, a.Built)
	r.Started = started
	r.Finished = time.Now()
	r.Unscanned = unscanned
	if err := writeReport(e, &o, r); err != nil {
		return err
	}
	if len(openErrs) > 0 {
		// Each was printed with the report; the exit status says it.
		return errors.Join(openErrs...)
	}
	return checkThreshold(r, o.failOn)
}

func (e *env) setVerbose(v bool) {
	if v {
		e.log = slogVerbose(e.stderr)
	}
}

// openBinaries opens every binary in parallel. It returns the ones it could
// open, in argument order, and the report's entry and an error for each one
// it could not. With -v it logs each binary as it is read.
func openBinaries(ctx context.Context, e *env, paths []string) ([]*binfo.Binary, []report.Unscanned, []error) {
	bins := make([]*binfo.Binary, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			bins[i], errs[i] = binfo.Open(p)
			if errs[i] == nil {
				b := bins[i]
				e.log.InfoContext(ctx, "read binary", "path", p, "go", b.GoVersion, "modules", len(b.Deps), "functions", len(b.Funcs), "took", time.Since(t).Round(time.Millisecond))
			}
		}()
	}
	wg.Wait()
	var ok []*binfo.Binary
	var unscanned []report.Unscanned
	var bad []error
	for i, p := range paths {
		if errs[i] != nil {
			unscanned = append(unscanned, report.Unscanned{Path: p, Error: errs[i].Error()})
			bad = append(bad, errs[i])
			continue
		}
		ok = append(ok, bins[i])
	}
	return ok, unscanned, bad
}

func closeBinaries(bins []*binfo.Binary) {
	for _, b := range bins {
		b.Close()
	}
}

// newReport builds a report of mode from the analysis's report binaries
// and notes, with the database's identity and warnings.
func newReport(ctx context.Context, mode string, db *vulndb.Client, built *report.Built) *report.Report {
	r := &report.Report{
		Schema:   report.Schema,
		Tool:     report.Tool{Name: "reach", Version: version()},
		DB:       report.DB{Source: db.Source()},
		Mode:     mode,
		Binaries: built.Binaries,
	}
	if modified, err := db.Modified(ctx); err == nil {
		r.DB.Modified = modified
	}
	r.Notes = append(r.Notes, db.Warnings()...)
	r.Notes = append(r.Notes, built.Notes...)
	return r
}

// writeReport renders r in the chosen format to -o or standard output. A
// file is written whole or not at all; a device, a FIFO or a terminal is
// written to, never replaced (see safefile.WriteFile).
func writeReport(e *env, o *outputFlags, r *report.Report) error {
	render, err := o.renderer(r)
	if err != nil {
		return err
	}
	if o.out == "" {
		return render(e.stdout, r)
	}
	if w := e.stdStream(o.out); w != nil {
		return render(w, r)
	}
	if err := safefile.WriteFile(o.out, 0o644, func(w io.Writer) error { return render(w, r) }); err != nil {
		return fmt.Errorf("write report %s: %w", o.out, err)
	}
	return nil
}

// stdStream returns the writer a name of standard output or error stands
// for (/dev/stdout, /dev/fd/2, ...), else nil. Such a name is written to
// as the stream it names, whatever that is (a pipe, a terminal or a
// file, appended to or not), never opened anew.
func (e *env) stdStream(name string) io.Writer {
	switch name {
	case "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1":
		return e.stdout
	case "/dev/stderr", "/dev/fd/2", "/proc/self/fd/2":
		return e.stderr
	}
	return nil
}

func checkThreshold(r *report.Report, failOn string) error {
	if failOn == "never" {
		return nil
	}
	st, err := report.ParseStatus(failOn)
	if err != nil {
		return usageError("-fail-on: %v", err)
	}
	if r.NothingObserved() {
		// A gate must not pass on an observation of nothing.
		return fmt.Errorf("no Go program was observed, so -fail-on %s cannot tell whether the program is safe: run a Go program (reach run -- ./app), or pass -fail-on never", failOn)
	}
	return check(r, st)
}
