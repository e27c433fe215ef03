// Package analysis is reach's static pipeline, the one both reach scan and
// the observe session run: it reads the OSV entries of binaries' modules,
// matches each binary against them (package match), and turns the match
// results into the report's binaries (report.FromMatch).
//
// The module paths come from the opened binaries (match.ModulePaths), not
// from their build information alone: a test binary's come from its source
// file paths.
package analysis

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
)

// Entries is where the OSV entries come from: a *vulndb.Client, or a cache
// in front of one.
type Entries interface {
	// ByModules returns the entries that affect any of the module paths.
	ByModules(ctx context.Context, paths []string) ([]*osv.Entry, error)
}

// Options configures Run. The zero value matches with match's defaults and
// logs nothing.
type Options struct {
	Match *match.Options // passed to match.Match
	Log   *slog.Logger   // progress, at level Info; nil logs nothing
}

// Analysis is the result of Run.
type Analysis struct {
	// Results has one match result per binary, in the binaries' order.
	Results []*match.Result
	// Built holds the report binaries, in the same order, the notes to add
	// to the report, and each matched symbol's report SymbolRef.
	*report.Built
}

// Run reads the entries of the modules of bins from db, matches every
// binary against them in parallel, and builds their report binaries.
func Run(ctx context.Context, db Entries, bins []*binfo.Binary, opts *Options) (*Analysis, error) {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.Now()
	entries, err := db.ByModules(ctx, match.ModulePaths(bins...))
	if err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "read the database entries of the binaries' modules", "entries", len(entries), "took", time.Since(t).Round(time.Millisecond))
	t = time.Now()
	results := make([]*match.Result, len(bins))
	errs := make([]error, len(bins))
	var wg sync.WaitGroup
	for i, b := range bins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = match.Match(ctx, b, entries, opts.Match)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "matched", "binaries", len(bins), "took", time.Since(t).Round(time.Millisecond))
	built, err := report.FromMatch(results)
	if err != nil {
		return nil, err
	}
	return &Analysis{Results: results, Built: built}, nil
}

// EntriesFunc is a function that serves as Entries.
type EntriesFunc func(ctx context.Context, paths []string) ([]*osv.Entry, error)

// ByModules calls f.
func (f EntriesFunc) ByModules(ctx context.Context, paths []string) ([]*osv.Entry, error) {
	return f(ctx, paths)
}
