package main

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// universe generates the binaries the simulated agents report: binary i
// is the same every time it is made (a fixed seed per binary), so that the
// benchmark knows, without keeping every batch, which finding rows the
// server must hold and with how many hits.
type universe struct {
	services int
	vulns    []vuln
	filler   []report.Module // modules without vulnerabilities
	start    time.Time       // first seen of every hit
}

// vuln is one OSV entry of the generated database.
type vuln struct {
	osv, alias, summary string
	module, version     string
	fixed               string
	packages            []string
	symbols             []string // "pkg.Func" names, in packages
}

// numVulns is the size of the pool of OSV entries binaries draw from: the
// order of the real database's entries with symbols for common modules.
const numVulns = 400

func newUniverse(services int) *universe {
	u := &universe{services: services, start: time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)}
	rng := rand.New(rand.NewPCG(12, 0))
	for i := range numVulns {
		mod := fmt.Sprintf("github.com/org%02d/mod%03d", i%37, i%150)
		v := vuln{
			osv:     fmt.Sprintf("GO-%d-%04d", 2020+i%6, 1000+i),
			alias:   fmt.Sprintf("CVE-%d-%05d", 2020+i%6, 20000+i*7),
			summary: fmt.Sprintf("Denial of service through crafted input in %s (generated entry %d)", mod, i),
			module:  mod,
			version: fmt.Sprintf("v1.%d.%d", i%9, i%5),
			fixed:   fmt.Sprintf("v1.%d.0", i%9+1),
		}
		for p := range 1 + rng.IntN(2) {
			pkg := fmt.Sprintf("%s/pkg%d", mod, p)
			v.packages = append(v.packages, pkg)
			for s := range 1 + rng.IntN(3) {
				v.symbols = append(v.symbols, fmt.Sprintf("%s\x00Parse%c%d", pkg, 'A'+rune(s), i))
			}
		}
		u.vulns = append(u.vulns, v)
	}
	for i := range 200 {
		u.filler = append(u.filler, report.Module{Path: fmt.Sprintf("golang.org/x/filler%03d", i), Version: fmt.Sprintf("v0.%d.%d", i%30, i%7)})
	}
	return u
}

// binarySpec is one generated binary and what it makes the server store.
type binarySpec struct {
	index       int
	service     string
	environment string
	bin         *report.Binary // hits are filled in per batch (withHits)
	rows        int            // finding rows the server stores for it
	// weight is the sum over its callsites of the hits each gets per
	// batch: after k batches of one instance, the server holds k*weight
	// hits for that instance.
	weight uint64
}

// binary returns binary i: its service and environment, about 40 modules,
// 20 to 30 findings of which about a third reached with one to three
// callsites and a 12-frame stack.
func (u *universe) binary(i int) *binarySpec {
	rng := rand.New(rand.NewPCG(34, uint64(i)))
	svc := fmt.Sprintf("svc-%03d", i%u.services)
	spec := &binarySpec{
		index:       i,
		service:     svc,
		environment: []string{"prod", "staging", "dev"}[i/u.services%3],
	}
	b := &report.Binary{
		Path:        "/srv/" + svc + "/bin/" + svc,
		BuildID:     fmt.Sprintf("%016x/%016x/%016x/%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), uint64(i)),
		GoVersion:   "go1.25.4",
		MainModule:  "example.com/" + svc,
		MainVersion: fmt.Sprintf("v0.%d.0", i/u.services),
		Stripped:    i%4 == 0,
		PIE:         i%3 == 0,
	}
	mods := map[string]report.Module{}
	picked := rng.Perm(len(u.vulns))[:20+rng.IntN(11)]
	for _, vi := range picked {
		v := &u.vulns[vi]
		mods[v.module] = report.Module{Path: v.module, Version: v.version}
		f, rows, weight := u.finding(rng, v, svc)
		b.Findings = append(b.Findings, f)
		spec.rows += rows
		spec.weight += weight
	}
	for len(mods) < 40 {
		m := u.filler[rng.IntN(len(u.filler))]
		mods[m.Path] = m
	}
	for _, m := range mods {
		b.Modules = append(b.Modules, m)
	}
	slices.SortFunc(b.Modules, func(a, b report.Module) int { return cmp.Compare(a.Path, b.Path) })
	slices.SortFunc(b.Findings, func(a, b *report.Finding) int { return cmp.Compare(a.OSV, b.OSV) })
	spec.bin = b
	return spec
}

// finding makes v's finding in a binary of service svc, and returns the
// finding rows it makes the server store (one per callsite of a reached
// symbol, one per other symbol, one for a finding without symbols: see
// docs/server.md) and its hits per batch.
func (u *universe) finding(rng *rand.Rand, v *vuln, svc string) (*report.Finding, int, uint64) {
	f := &report.Finding{
		OSV: v.osv, Aliases: []string{v.alias}, Summary: v.summary,
		Module: v.module, Version: v.version, FixedVersion: v.fixed,
	}
	r := rng.IntN(10)
	switch {
	case r < 1:
		// Imported: the module is there, none of its symbols.
		f.Status = report.Imported
		return f, 1, 0
	case r < 2:
		f.Status = report.NotWatched
	case r < 6:
		f.Status = report.Linked
	default:
		f.Status = report.Reached
	}
	rows := 0
	var weight uint64
	for si, name := range v.symbols {
		if si > 0 && rng.IntN(2) == 0 {
			continue // not every symbol of the entry is linked in
		}
		pkg, fn := splitSymbol(name)
		s := &report.Symbol{Package: pkg, Name: fn, Status: report.Linked}
		if f.Status == report.NotWatched {
			s.Status = report.NotWatched
			s.Unwatched = []string{"not selected by the targets"}
		}
		if f.Status == report.Reached && si == 0 {
			s.Status = report.Reached
			first := u.start
			s.FirstSeen = &first
			for c := range 1 + rng.IntN(3) {
				s.Callsites = append(s.Callsites, &report.Callsite{
					Function: fmt.Sprintf("example.com/%s/internal/api.(*Handler).serve%c", svc, 'A'+rune(c)),
					File:     fmt.Sprintf("/src/%s/internal/api/handler%d.go", svc, c),
					Line:     40 + 17*c + rng.IntN(200),
					Hits:     uint64(1 + c), // per batch: see withHits
				})
				weight += uint64(1 + c)
			}
			s.Stack = stack(svc, pkg, fn)
			rows += len(s.Callsites)
		} else {
			rows++
		}
		f.Symbols = append(f.Symbols, s)
	}
	return f, rows, weight
}

func splitSymbol(s string) (pkg, name string) {
	for i := range len(s) {
		if s[i] == 0 {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// stack is a first hit's stack: the vulnerable function, the callsite's
// handler and net/http's frames down to the goroutine's start.
func stack(svc, pkg, fn string) []report.Frame {
	frames := []report.Frame{{Function: pkg + "." + fn, File: "/root/go/pkg/mod/" + pkg + "/parse.go", Line: 118}}
	for d := range 4 {
		frames = append(frames, report.Frame{Function: fmt.Sprintf("example.com/%s/internal/api.step%d", svc, d), File: fmt.Sprintf("/src/%s/internal/api/step.go", svc), Line: 20 + 9*d})
	}
	for _, f := range []string{"net/http.HandlerFunc.ServeHTTP", "net/http.(*ServeMux).ServeHTTP", "net/http.serverHandler.ServeHTTP", "net/http.(*conn).serve", "runtime.goexit"} {
		frames = append(frames, report.Frame{Function: f, File: "/usr/local/go/src/net/http/server.go", Line: 2200})
	}
	return frames[:min(len(frames), 12)]
}

// withHits returns a copy of b whose hit totals are those after k batches
// of one instance: every callsite's per-batch hits times k, each symbol's
// the sum of its callsites', and its last seen at now.
func withHits(b *report.Binary, k uint64, now time.Time) *report.Binary {
	c := *b
	c.Findings = make([]*report.Finding, len(b.Findings))
	for i, f := range b.Findings {
		fc := *f
		c.Findings[i] = &fc
		if f.Status != report.Reached {
			continue
		}
		fc.Symbols = make([]*report.Symbol, len(f.Symbols))
		for j, s := range f.Symbols {
			sc := *s
			fc.Symbols[j] = &sc
			if len(s.Callsites) == 0 {
				continue
			}
			sc.Hits = 0
			sc.Callsites = make([]*report.Callsite, len(s.Callsites))
			for ci, cs := range s.Callsites {
				csc := *cs
				csc.Hits = cs.Hits * k
				sc.Callsites[ci] = &csc
				sc.Hits += csc.Hits
			}
			last := now
			sc.LastSeen = &last
		}
	}
	return &c
}
