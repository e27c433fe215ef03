package report

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Merge adds the report src to dst, as if one observation had covered
// both: the reports of `go test -exec 'reach run …'`, one per test binary,
// become the one document `reach run -- go test` writes. dst spans both
// reports' times; src's binaries are added, and a binary dst has already
// (the same path and build ID: a test binary run twice) gets src's
// observation of it: each finding and symbol takes the more severe status,
// hits add up, first and last seen widen, callsites add up, watched
// periods and unwatched reasons join. Notes and target selections are
// added once each. src is not modified; dst shares nothing with it.
//
// Reports of different modes, or made with different vulnerability
// databases, merge too; the latter gets a note, as the findings of the
// binaries may not be comparable. dst's binaries end up sorted by name.
func Merge(dst, src *Report) {
	src = src.Clone()
	if dst.Schema == "" {
		dst.Schema = src.Schema
	}
	if dst.Tool == (Tool{}) {
		dst.Tool = src.Tool
	}
	if dst.Mode == "" {
		dst.Mode = src.Mode
	}
	if dst.DB == (DB{}) {
		dst.DB = src.DB
	} else if src.DB != (DB{}) && !sameDB(dst.DB, src.DB) {
		addNote(dst, fmt.Sprintf("merged reports used different vulnerability databases: %s and %s", dbName(dst.DB), dbName(src.DB)))
	}
	if dst.Started.IsZero() || (!src.Started.IsZero() && src.Started.Before(dst.Started)) {
		dst.Started = src.Started
	}
	if src.Finished.After(dst.Finished) {
		dst.Finished = src.Finished
	}
	for _, sel := range src.Targets {
		if !slices.ContainsFunc(dst.Targets, func(d Selection) bool {
			return d.File == sel.File && slices.Equal(d.Selectors, sel.Selectors)
		}) {
			dst.Targets = append(dst.Targets, sel)
		}
	}
	slices.SortStableFunc(dst.Targets, func(a, b Selection) int { return a.From.Compare(b.From) })
	for _, n := range src.Notes {
		addNote(dst, n)
	}
	if dst.Binaries == nil {
		dst.Binaries = []*Binary{}
	}
	for _, b := range src.Binaries {
		i := slices.IndexFunc(dst.Binaries, func(d *Binary) bool { return d.Path == b.Path && d.BuildID == b.BuildID })
		if i < 0 {
			dst.Binaries = append(dst.Binaries, b)
			continue
		}
		mergeBinary(dst.Binaries[i], b)
	}
	// Runs end in any order: list the binaries by name, as a reader
	// looks for them.
	slices.SortStableFunc(dst.Binaries, func(x, y *Binary) int { return cmp.Compare(x.Name(), y.Name()) })
}

func sameDB(a, b DB) bool { return a.Source == b.Source && a.Modified.Equal(b.Modified) }

func dbName(db DB) string {
	if db.Modified.IsZero() {
		return db.Source
	}
	return fmt.Sprintf("%s (modified %s)", db.Source, db.Modified.UTC().Format(time.RFC3339))
}

func addNote(r *Report, n string) {
	if !slices.Contains(r.Notes, n) {
		r.Notes = append(r.Notes, n)
	}
}

func mergeBinary(dst, src *Binary) {
	for _, pid := range src.PIDs {
		if !slices.Contains(dst.PIDs, pid) {
			dst.PIDs = append(dst.PIDs, pid)
		}
	}
	slices.Sort(dst.PIDs)
	for _, f := range src.Findings {
		i := slices.IndexFunc(dst.Findings, func(d *Finding) bool { return d.OSV == f.OSV && d.Module == f.Module })
		if i < 0 {
			dst.Findings = append(dst.Findings, f)
			continue
		}
		d := dst.Findings[i]
		d.Status = worse(d.Status, f.Status)
		for _, s := range f.Symbols {
			j := slices.IndexFunc(d.Symbols, func(ds *Symbol) bool {
				return ds.Package == s.Package && ds.Name == s.Name && ds.Scope == s.Scope
			})
			if j < 0 {
				d.Symbols = append(d.Symbols, s)
				continue
			}
			mergeSymbol(d.Symbols[j], s)
		}
	}
}

func mergeSymbol(dst, src *Symbol) {
	dst.Status = worse(dst.Status, src.Status)
	dst.Hits += src.Hits
	dst.HitsLowerBound = dst.HitsLowerBound || src.HitsLowerBound
	if src.FirstSeen != nil && (dst.FirstSeen == nil || src.FirstSeen.Before(*dst.FirstSeen)) {
		dst.FirstSeen = src.FirstSeen
		if len(src.Stack) > 0 {
			dst.Stack = src.Stack // the stack of the earliest hit
		}
	}
	if src.LastSeen != nil && (dst.LastSeen == nil || src.LastSeen.After(*dst.LastSeen)) {
		dst.LastSeen = src.LastSeen
	}
	if len(dst.Stack) == 0 {
		dst.Stack = src.Stack
	}
	for _, c := range src.Callsites {
		callsite(dst, Frame{Function: c.Function, File: c.File, Line: c.Line}).Hits += c.Hits
	}
	dst.Watched = append(dst.Watched, src.Watched...)
	slices.SortStableFunc(dst.Watched, func(a, b Period) int { return a.From.Compare(b.From) })
	if len(dst.Watched) > maxPeriods {
		// As Watching does past the cap: the last period spans the rest.
		last := dst.Watched[maxPeriods-1]
		last.Until = nil
		for _, p := range dst.Watched[maxPeriods-1:] {
			if p.Until == nil {
				last.Until = nil
				break
			}
			if last.Until == nil || p.Until.After(*last.Until) {
				last.Until = p.Until
			}
		}
		dst.Watched = append(dst.Watched[:maxPeriods-1], last)
	}
	for _, u := range src.Unwatched {
		if !slices.Contains(dst.Unwatched, u) {
			dst.Unwatched = append(dst.Unwatched, u)
		}
	}
}

// worse returns the more severe of two statuses.
func worse(a, b Status) Status {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}
