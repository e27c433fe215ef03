package match

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/semver"
)

// ErrNoBinary reports a call to Match without a binary.
var ErrNoBinary = errors.New("no binary to match")

// SiteFinder computes probe sites. *binfo.Binary implements it.
type SiteFinder interface {
	EntrySite(f *binfo.Func) (binfo.Site, error)
	InlineSites(f *binfo.Func, i int) ([]binfo.Site, error)
}

// Options tune Match. The zero value (or nil) computes every probe site
// with the binary itself.
type Options struct {
	// SkipSites leaves Func.Sites empty, for callers that only report
	// (reach scan).
	SkipSites bool
	// Sites computes the probe sites instead of the binary.
	Sites SiteFinder
	// MainPackage is the import path of the binary's package main (the
	// "path" line of its build information, such as
	// "example.com/app/cmd/app"). Binaries name that package's functions
	// "main.F"; with MainPackage set, entries that name the package by its
	// import path match them. Empty means the binary's own
	// (binfo.Binary.MainPackage).
	MainPackage string
}

// Match matches bin against entries, which may hold entries for modules
// bin does not contain: they are ignored. It never modifies entries or bin.
//
// An entry affects bin when it is not withdrawn and one of its "affected"
// blocks names a module of bin whose version is in the block's ranges and
// whose imports (if it lists any) include one for bin's GOOS and GOARCH. The
// finding lists every vulnerable symbol of those imports that is compiled
// into bin, as a function of its own or inlined into another (see the
// package documentation for how names match). A block without imports gives
// no symbols: its finding is Imported.
//
// Every binary contains the Go distribution, so for the "stdlib" and
// "toolchain" modules being present says nothing: a block of those modules
// applies only when the binary has code from one of the packages it names
// (or it names none). A crypto/tls vulnerability is thus no finding for a
// program without crypto/tls, and toolchain (cmd/go) vulnerabilities are
// findings only for the go command itself. When an entry affects several
// modules of bin, its one finding names the module with the highest status
// (the first listed on a tie) and lists the symbols of all of them.
//
// Probe sites that cannot be computed do not fail the match: they are
// recorded in Func.SiteErr. Match fails only when ctx is done or bin is
// nil.
func Match(ctx context.Context, bin *binfo.Binary, entries []*osv.Entry, opts *Options) (*Result, error) {
	if bin == nil {
		return nil, ErrNoBinary
	}
	if opts == nil {
		opts = &Options{}
	}
	mods, unchecked := binaryModules(bin)
	m := &matcher{bin: bin, mods: mods, mainPkg: cmp.Or(opts.MainPackage, bin.MainPackage),
		modPaths: ownerPaths(bin), pkgMod: map[string]string{}}
	m.pkgs, m.wholeMods = m.entryPackages(entries)
	res := &Result{Binary: bin, Unchecked: unchecked}
	for i, e := range entries {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("match %s: %w", bin.Path, err)
			}
		}
		if e == nil || e.Withdrawn != nil {
			continue
		}
		if f := m.entry(e); f != nil {
			res.Findings = append(res.Findings, f)
		}
	}
	sort.SliceStable(res.Findings, func(i, j int) bool { return res.Findings[i].Entry.ID < res.Findings[j].Entry.ID })
	if !opts.SkipSites && m.idx != nil {
		sf := opts.Sites
		if sf == nil {
			sf = bin
		}
		if err := m.addSites(ctx, sf, res.Findings); err != nil {
			return nil, fmt.Errorf("match %s: %w", bin.Path, err)
		}
	}
	return res, nil
}

// matcher holds what Match computes once per binary.
type matcher struct {
	bin     *binfo.Binary
	mods    map[string]string
	mainPkg string
	pkgs    map[string]bool // the binary package paths entries name
	// wholeMods are the modules some entry names without packages: all
	// their packages are indexed.
	wholeMods map[string]bool
	modPaths  []string          // the binary's modules
	pkgMod    map[string]string // moduleOf's answers
	idx       *index            // built on first use: most binaries match few entries
}

// entryPackages returns the binary package paths of every package entries
// name, and the modules they name without packages, whatever the versions:
// the only code matching looks up.
func (m *matcher) entryPackages(entries []*osv.Entry) (pkgs, mods map[string]bool) {
	pkgs, mods = map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		if e == nil {
			continue
		}
		for _, a := range e.Affected {
			if wholeModule(a) {
				mods[a.Module.Path] = true
				continue
			}
			for _, p := range a.EcosystemSpecific.Packages {
				pkgs[m.binaryPkg(p.Path)] = true
			}
		}
	}
	return pkgs, mods
}

// wholeModule reports whether a names no package of its module: no symbol
// data, every package of the module is vulnerable.
func wholeModule(a osv.Affected) bool {
	return a.EcosystemSpecific == nil || len(a.EcosystemSpecific.Packages) == 0
}

// index returns the index of the binary's functions, building it on first
// use: most binaries match few entries.
func (m *matcher) index() *index {
	if m.idx == nil {
		m.idx = newIndex(m.bin.Funcs, func(pkg string) bool {
			return m.pkgs[pkg] || len(m.wholeMods) > 0 && m.wholeMods[m.moduleOf(pkg)]
		})
	}
	return m.idx
}

// binaryPkg returns the package path the binary uses for the package an
// OSV entry calls path.
func (m *matcher) binaryPkg(path string) string {
	if m.mainPkg != "" && path == m.mainPkg {
		return "main"
	}
	return path
}

// moduleMatch is what one entry says about one module of the binary.
type moduleMatch struct {
	module, version string
	affected        bool
	ranges          []osv.Range // of every block for this platform
	allVersions     bool        // some block for this platform has no ranges
	whole           bool        // an affecting block names no package
	symbols         []*Symbol
}

// entry returns the finding of e in the binary, or nil.
func (m *matcher) entry(e *osv.Entry) *Finding {
	var order []*moduleMatch
	byModule := map[string]*moduleMatch{}
	for _, a := range e.Affected {
		version, ok := m.mods[a.Module.Path]
		if !ok {
			continue
		}
		var imports []osv.Package
		if !wholeModule(a) {
			for _, p := range a.EcosystemSpecific.Packages {
				if matchesPlatform(p, m.bin.GOOS, m.bin.GOARCH) {
					imports = append(imports, p)
				}
			}
			if len(a.EcosystemSpecific.Packages) > 0 && len(imports) == 0 {
				continue // only for other platforms
			}
		}
		mm := byModule[a.Module.Path]
		if mm == nil {
			mm = &moduleMatch{module: a.Module.Path, version: version}
			byModule[a.Module.Path] = mm
			order = append(order, mm)
		}
		mm.ranges = append(mm.ranges, a.Ranges...)
		if len(a.Ranges) == 0 {
			mm.allVersions = true
		}
		if !semver.Affects(a.Ranges, version) {
			continue
		}
		if isGo(a.Module.Path) && len(imports) > 0 && !m.anyPackage(imports) {
			continue
		}
		mm.affected = true
		if wholeModule(a) {
			mm.whole = true
			if s := m.moduleSymbol(a.Module.Path); s != nil {
				mm.symbols = append(mm.symbols, s)
			}
			continue
		}
		for _, p := range imports {
			mm.symbols = m.addSymbols(mm.symbols, p)
		}
	}
	var best *moduleMatch
	var symbols []*Symbol
	for _, mm := range order {
		if !mm.affected {
			continue
		}
		if best == nil || len(best.symbols) == 0 && len(mm.symbols) > 0 {
			best = mm
		}
		symbols = append(symbols, mm.symbols...)
	}
	if best == nil {
		return nil
	}
	f := &Finding{
		Entry:       e,
		Module:      best.module,
		Version:     best.version,
		Status:      Imported,
		Symbols:     mergeSymbols(symbols),
		WholeModule: best.whole,
	}
	if !best.allVersions {
		f.FixedVersion = semver.FixedVersion(best.ranges, best.version)
	}
	if len(f.Symbols) > 0 {
		f.Status = Linked
	}
	return f
}

// isGo reports whether module is the Go distribution, which every binary
// contains.
func isGo(module string) bool {
	return module == osv.ModuleStdlib || module == osv.ModuleToolchain
}

// anyPackage reports whether the binary has code from one of imports.
func (m *matcher) anyPackage(imports []osv.Package) bool {
	for _, p := range imports {
		if len(m.index().byPkg[m.binaryPkg(p.Path)]) > 0 {
			return true
		}
	}
	return false
}

// addSymbols appends the symbols of import p found in the binary.
func (m *matcher) addSymbols(syms []*Symbol, p osv.Package) []*Symbol {
	idx, pkg := m.index(), m.binaryPkg(p.Path)
	if len(p.Symbols) == 0 {
		if s := m.packageSymbol(p.Path); s != nil {
			syms = append(syms, s)
		}
		return syms
	}
	for _, s := range p.Symbols {
		if cs := idx.symbol(pkg, s); len(cs) > 0 {
			syms = append(syms, newSymbol(p.Path, s, cs))
		}
	}
	return syms
}

func newSymbol(pkg, name string, cs []*compiled) *Symbol {
	s := &Symbol{Package: pkg, Name: name}
	for _, c := range cs {
		s.Funcs = append(s.Funcs, &Func{Name: c.name})
	}
	return s
}

// mergeSymbols sorts syms by package and name, merging the functions of a
// symbol listed more than once, and sorts each symbol's functions by name.
func mergeSymbols(syms []*Symbol) []*Symbol {
	type key struct {
		pkg, name string
		scope     Scope
	}
	byKey := map[key]*Symbol{}
	var out []*Symbol
	for _, s := range syms {
		k := key{s.Package, s.Name, s.Scope}
		if prev := byKey[k]; prev != nil {
			for _, t := range s.Funcs {
				if !hasFunc(prev.Funcs, t.Name) {
					prev.Funcs = append(prev.Funcs, t)
				}
			}
			continue
		}
		byKey[k] = s
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Scope < out[j].Scope
	})
	for _, s := range out {
		sort.Slice(s.Funcs, func(i, j int) bool { return s.Funcs[i].Name < s.Funcs[j].Name })
	}
	return out
}

func hasFunc(ts []*Func, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}
