package oracle

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/semver"
	"github.com/reach-sca/reach/internal/vulndb"
)

// Key names one thing reach reports as reached or not: a vulnerable symbol
// as the OSV entry spells it (Package, Name), a whole package (Name ""),
// or, for an entry that names no package, a whole module (Package "",
// Module set).
type Key struct {
	Module  string `json:"module,omitempty"` // set for a module-level entry only
	Package string `json:"package,omitempty"`
	Name    string `json:"name,omitempty"`
}

func (k Key) String() string {
	switch {
	case k.Package == "":
		return k.Module + " (whole module)"
	case k.Name == "":
		return k.Package + " (whole package)"
	}
	return k.Package + "." + k.Name
}

// Vulnerable is the vulnerable code a binary may contain, found from its
// packages (go list) and the database, without reach: every symbol, whole
// package and whole module of the entries that affect the versions built,
// with the entries that name it.
type Vulnerable struct {
	Keys map[Key][]string // OSV IDs, sorted
	// Modules maps a module-level key's module to the packages of the
	// binary in it.
	Modules map[string][]string
}

// findVulnerable lists what the database says is vulnerable in pkgs, built
// with Go goVersion (such as "go1.21.0"). A main module at "(devel)" has no
// version to check, as for reach and govulncheck.
func findVulnerable(ctx context.Context, db *vulndb.Client, pkgs []*Package, goVersion string) (*Vulnerable, error) {
	stdVer, err := semver.FromGo(goVersion)
	if err != nil {
		return nil, err
	}
	versions := map[string]string{osv.ModuleStdlib: stdVer}
	inBinary := make(map[string]bool)
	modPkgs := make(map[string][]string)
	for _, p := range pkgs {
		inBinary[p.ImportPath] = true
		mod := osv.ModuleStdlib
		if !p.Standard {
			if p.Module == nil {
				continue
			}
			mod = p.Module.Path
			if p.Module.Version != "" {
				versions[mod] = p.Module.Version
			}
		}
		modPkgs[mod] = append(modPkgs[mod], p.ImportPath)
	}
	mods := make([]string, 0, len(versions))
	for m := range versions {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	entries, err := db.ByModules(ctx, mods)
	if err != nil {
		return nil, fmt.Errorf("read the database: %w", err)
	}
	v := &Vulnerable{Keys: make(map[Key][]string), Modules: make(map[string][]string)}
	add := func(k Key, id string) {
		if !slices.Contains(v.Keys[k], id) {
			v.Keys[k] = append(v.Keys[k], id)
			slices.Sort(v.Keys[k])
		}
	}
	for _, e := range entries {
		if vulndb.Withdrawn(e) {
			continue
		}
		for _, a := range e.Affected {
			ver, ok := versions[a.Module.Path]
			if !ok || !semver.Affects(a.Ranges, ver) {
				continue
			}
			if a.EcosystemSpecific == nil || len(a.EcosystemSpecific.Packages) == 0 {
				if a.Module.Path != osv.ModuleStdlib && len(modPkgs[a.Module.Path]) > 0 {
					add(Key{Module: a.Module.Path}, e.ID)
					v.Modules[a.Module.Path] = modPkgs[a.Module.Path]
				}
				continue
			}
			for _, p := range a.EcosystemSpecific.Packages {
				if !inBinary[p.Path] || !forLinuxAMD64(p) {
					continue
				}
				if len(p.Symbols) == 0 {
					add(Key{Package: p.Path}, e.ID)
				}
				for _, s := range p.Symbols {
					add(Key{Package: p.Path, Name: s}, e.ID)
				}
			}
		}
	}
	return v, nil
}

// forLinuxAMD64 is whether a package's vulnerability applies on the
// platform the harness builds for.
func forLinuxAMD64(p osv.Package) bool {
	return (len(p.GOOS) == 0 || slices.Contains(p.GOOS, "linux")) &&
		(len(p.GOARCH) == 0 || slices.Contains(p.GOARCH, "amd64"))
}

// packages returns the packages the keys of v need covered.
func (v *Vulnerable) packages() []string {
	set := make(map[string]bool)
	for k := range v.Keys {
		if k.Package != "" {
			set[k.Package] = true
		} else {
			for _, p := range v.Modules[k.Module] {
				set[p] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
