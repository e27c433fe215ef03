package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/reach-sca/reach/internal/semver"
)

// Upgrade is the advice for one module over the whole report: the lowest
// version that fixes every one of its findings, in every binary. The Go
// distribution (the stdlib and toolchain findings) is one Upgrade, with
// Module "go".
type Upgrade struct {
	Module string `json:"module"` // "go" for the standard library and the toolchain
	// Versions are the versions in the binaries, sorted.
	Versions []string `json:"versions"`
	// Fixed is the highest of the findings' fixed versions, which fixes
	// them all (a Go version such as "go1.26.9" for "go"); "" when none
	// of them has a fix.
	Fixed string `json:"fixed,omitempty"`
	// Command upgrades to Fixed: "go get golang.org/x/text@v0.3.8", or
	// "go get toolchain@go1.26.9" for Go.
	Command string `json:"command,omitempty"`
	// Findings are the OSV IDs Fixed fixes; NoFix those without a fixed
	// version, which no upgrade fixes.
	Findings []string `json:"findings"`
	NoFix    []string `json:"no_fix,omitempty"`
}

// GoModule is Upgrade.Module for the Go distribution.
const GoModule = "go"

// UpgradeAdvice returns one Upgrade per module with findings, modules in path
// order, Go last.
func (r *Report) UpgradeAdvice() []Upgrade {
	byMod := map[string]*Upgrade{}
	fixed := map[string]string{} // semantic versions
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			mod := f.Module
			if IsGo(mod) {
				mod = GoModule
			}
			u := byMod[mod]
			if u == nil {
				u = &Upgrade{Module: mod, Findings: []string{}}
				byMod[mod] = u
			}
			if v := f.DisplayVersion(); v != "" && !slices.Contains(u.Versions, v) {
				u.Versions = append(u.Versions, v)
			}
			if f.FixedVersion == "" {
				if !slices.Contains(u.NoFix, f.OSV) {
					u.NoFix = append(u.NoFix, f.OSV)
				}
				continue
			}
			if !slices.Contains(u.Findings, f.OSV) {
				u.Findings = append(u.Findings, f.OSV)
			}
			if cur := fixed[mod]; cur == "" || semver.Compare(f.FixedVersion, cur) > 0 {
				fixed[mod] = f.FixedVersion
			}
		}
	}
	var out []Upgrade
	for mod, u := range byMod {
		slices.Sort(u.Versions)
		slices.Sort(u.Findings)
		slices.Sort(u.NoFix)
		if v := fixed[mod]; v != "" {
			if mod == GoModule {
				u.Fixed = GoVersion(v)
				u.Command = "go get toolchain@" + u.Fixed
			} else {
				u.Fixed = v
				u.Command = fmt.Sprintf("go get %s@%s", mod, v)
			}
		}
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b Upgrade) int {
		if (a.Module == GoModule) != (b.Module == GoModule) {
			if a.Module == GoModule {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Module, b.Module)
	})
	return out
}

// upgrades writes the Upgrades section: per module, the one version and
// command that fix all its findings.
func (t *textWriter) upgrades(r *Report) {
	ups := r.UpgradeAdvice()
	if len(ups) == 0 {
		return
	}
	t.line("")
	t.line("Upgrades (the lowest version that fixes every finding of the module)")
	t.line("%s", strings.Repeat("=", 69))
	for _, u := range ups {
		name := u.Module
		if u.Module == GoModule {
			name = "Go"
		}
		from := strings.Join(u.Versions, ", ")
		if u.Fixed == "" {
			t.prose("  ", name+" "+from+": no fixed version yet for "+strings.Join(u.NoFix, ", ")+": avoid the vulnerable symbols or replace the module.")
			continue
		}
		t.line("  %s %s -> %s: fixes %s", name, from, u.Fixed, strings.Join(u.Findings, ", "))
		if u.Module == GoModule {
			t.line("    build with %s or later: %s", u.Fixed, u.Command)
		} else {
			t.line("    %s", u.Command)
		}
		if len(u.NoFix) > 0 {
			t.prose("    ", "No fixed version yet for "+strings.Join(u.NoFix, ", ")+": avoid the vulnerable symbols or replace the module.")
		}
	}
}

// unplacedHits says how many of a reached symbol's hits have no callsite:
// in one-shot mode the calls made before the probes went away are
// counted, but only the first hit's callsite is recorded.
func (t *textWriter) unplacedHits(pad string, s *Symbol) {
	var placed uint64
	for _, c := range s.Callsites {
		placed += c.Hits
	}
	if len(s.Callsites) == 0 || placed >= s.Hits {
		return
	}
	n := s.Hits - placed
	calls := "1 more call"
	if n != 1 {
		calls = fmt.Sprintf("%d more calls", n)
	}
	t.prose(pad, calls+" with no recorded callsite (seen before the probes were removed; only the first hit's callsite is recorded: -count records every call's)")
}
