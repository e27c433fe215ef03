package match

import (
	"fmt"
	"maps"
	"slices"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/semver"
)

// develVersion is the version the go command gives the main module when it
// has no better one (Go before 1.24, or a build outside version control).
const develVersion = "(devel)"

// binaryModules returns the version, with a leading "v", of every module of
// bin that entries can be checked against, keyed by the module path that
// OSV entries use, and the modules it cannot check.
//
//   - The main module, unless its version is "(devel)" or empty.
//   - Each dependency, at its replacement's version when it is replaced.
//     Code from a replacement keeps the original module's import paths, so
//     the entries to check are still those of the original path. A module
//     replaced by a local directory has no version at all: like govulncheck,
//     reach does not guess one, and reports the module as unchecked.
//   - "stdlib" and "toolchain" at bin.GoVersion converted by semver.FromGo.
//     Toolchain entries name packages of the go command (cmd/go...), which
//     are linked only into the go command itself; for other binaries they
//     come out as imported.
func binaryModules(bin *binfo.Binary) (map[string]string, []Unchecked) {
	mods := make(map[string]string, len(bin.Deps)+3)
	var unchecked []Unchecked
	if m := bin.Main; m.Path != "" {
		if m.Version == "" || m.Version == develVersion {
			unchecked = append(unchecked, Unchecked{Module: m.Path, Version: m.Version,
				Reason: "main module has no version (built outside version control or by Go before 1.24)"})
		} else {
			mods[m.Path] = m.Version
		}
	}
	for _, d := range bin.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
			if v == "" {
				unchecked = append(unchecked, Unchecked{Module: d.Path, Version: d.Version,
					Reason: fmt.Sprintf("replaced by local directory %s, which has no version", d.Replace.Path)})
				continue
			}
		}
		if v == "" {
			unchecked = append(unchecked, Unchecked{Module: d.Path, Reason: "no version in the build information"})
			continue
		}
		mods[d.Path] = v
	}
	goVersion, err := semver.FromGo(bin.GoVersion)
	if err != nil {
		for _, m := range []string{osv.ModuleStdlib, osv.ModuleToolchain} {
			unchecked = append(unchecked, Unchecked{Module: m, Version: bin.GoVersion, Reason: err.Error()})
		}
	} else {
		mods[osv.ModuleStdlib] = goVersion
		mods[osv.ModuleToolchain] = goVersion
	}
	return mods, unchecked
}

// ModulePaths lists, sorted, the module paths whose OSV entries Match
// checks bins against: those of binaryModules (inferred dependencies
// included), "stdlib" and "toolchain". Fetch the entries of these paths
// and pass them to Match.
func ModulePaths(bins ...*binfo.Binary) []string {
	set := map[string]bool{}
	for _, bin := range bins {
		mods, _ := binaryModules(bin)
		for p := range mods {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// matchesPlatform reports whether an OSV import applies to a binary built
// for goos and goarch: an empty list in the import, or an unknown platform
// of the binary, matches everything.
func matchesPlatform(p osv.Package, goos, goarch string) bool {
	return matchesOne(p.GOOS, goos) && matchesOne(p.GOARCH, goarch)
}

func matchesOne(list []string, s string) bool {
	if len(list) == 0 || s == "" {
		return true
	}
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
