package report

import (
	"fmt"
	"strings"

	"github.com/reach-sca/reach/internal/osv"
)

// GoVersion spells a semantic version of the Go distribution as Go does:
// "v1.21.3" is "go1.21.3", "v1.20.0" is "go1.20" (before Go 1.21 the first
// release of a line had no ".0"), and "v1.21.0-rc.2" is "go1.21rc2". Other
// strings are returned unchanged.
func GoVersion(v string) string {
	s, ok := strings.CutPrefix(v, "v")
	if !ok {
		return v
	}
	s, pre, _ := strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v
	}
	var minor int
	if _, err := fmt.Sscanf(parts[1], "%d", &minor); err != nil {
		return v
	}
	out := "go" + parts[0] + "." + parts[1]
	if pre != "" {
		// Pre-releases are always of the line's first release.
		return out + strings.ReplaceAll(pre, ".", "")
	}
	if parts[2] != "0" || minor >= 21 {
		out += "." + parts[2]
	}
	return out
}

// IsGo reports whether module is the Go distribution's pseudo-module:
// "stdlib" or "toolchain".
func IsGo(module string) bool {
	return module == osv.ModuleStdlib || module == osv.ModuleToolchain
}

// DisplayVersion is the finding's version as people write it: a Go version
// for the standard library and the toolchain, the module version otherwise.
func (f *Finding) DisplayVersion() string {
	if IsGo(f.Module) {
		return GoVersion(f.Version)
	}
	return f.Version
}

// FixedIn is the fixed version as people write it, or "" when there is none.
func (f *Finding) FixedIn() string {
	if f.FixedVersion == "" || !IsGo(f.Module) {
		return f.FixedVersion
	}
	return GoVersion(f.FixedVersion)
}

// Advice says how to fix the finding in b, in one sentence, such as
// "fixed in v0.3.7: upgrade with `go get golang.org/x/text@v0.3.7`".
func (f *Finding) Advice(b *Binary) string {
	fixed := f.FixedIn()
	if fixed == "" {
		if f.WholeModule {
			// No symbols to avoid: the whole module is vulnerable.
			return "no fixed version yet: remove or replace the module"
		}
		return "no fixed version yet: avoid the vulnerable symbols or replace the module"
	}
	var s string
	switch f.Module {
	case osv.ModuleStdlib:
		s = fmt.Sprintf("fixed in %s: upgrade Go to %s and rebuild", fixed, fixed)
	case osv.ModuleToolchain:
		s = fmt.Sprintf("fixed in %s: build with toolchain %s or later", fixed, fixed)
	default:
		s = fmt.Sprintf("fixed in %s: upgrade with `go get %s@%s`", fixed, f.Module, fixed)
		if m := b.Module(f.Module); m != nil && m.Replace != "" {
			s += fmt.Sprintf(" and update the replacement %s", m.Replace)
		}
	}
	return s
}

// Module returns the module of b with that path, or nil (also for a nil
// b).
func (b *Binary) Module(path string) *Module {
	if b == nil {
		return nil
	}
	for i := range b.Modules {
		if b.Modules[i].Path == path {
			return &b.Modules[i]
		}
	}
	return nil
}

// URL is the finding's page on pkg.go.dev.
func (f *Finding) URL() string {
	return "https://pkg.go.dev/vuln/" + f.OSV
}
