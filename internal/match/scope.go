package match

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
)

// Entries without symbol data.
//
// Most entries of the database (nearly all of them UNREVIEWED) name a
// module and its versions but no package, and some name packages without
// symbols. Like govulncheck, reach then treats every function of the module
// (or package) as vulnerable: the finding is linked when any code of the
// module or package is in the binary, as a function of its own or inlined
// into another, initialization included.
//
// At run time such a finding is reached when code of the module runs other
// than its packages' initialization, which runs in every program that
// links it. Probing every function would cost thousands of sites for a
// large module; outside code can only enter a module through its entry
// points, so those are its Funcs:
//
//   - functions and methods with an exported name, in any package of the
//     module (internal ones included: a method of an unexported or internal
//     type is called through interfaces), with their generic
//     instantiations (Map[go.shape.int] is the only code of Map);
//   - closures and method values (F.func1, init.0.func2, glob..func1,
//     (*t).m-fm, F-range1): function values that outside code can call
//     once the module hands them out, even during its initialization;
//   - and of these, the copies inlined into code outside the module (or
//     package), which execute without any call into it. Copies inlined into
//     the module's own code run only once the module was entered.
//
// Left out: the package initializers themselves (init, init.N), and
// unexported named functions, which outside code can call only through a
// function value the module hands out (http.HandleFunc("/", serveRoot)).
//
// Whether a hit belongs to initialization is decided at run time from its
// call stack (see Symbol.Covers); the probes then stay armed.

// scope is the code a whole-package or whole-module symbol stands for: the
// binary package paths (as the pclntab spells them, "main" for package
// main) of the module or the package.
type scope map[string]bool

// Covers reports whether a function of package pkg (as the pclntab spells
// it, "main" for package main) is code of s: for a whole-package or
// whole-module symbol, a package of it; for a named symbol, false.
func (s *Symbol) Covers(pkg string) bool {
	return s.scope[pkg]
}

// IsInit reports whether the compiled function name is a package
// initializer: "p.init" or "p.init.0" (not a closure inside one).
func IsInit(name string) bool {
	_, sym := splitFuncName(name)
	if sym == "init" {
		return true
	}
	n, ok := strings.CutPrefix(sym, "init.")
	return ok && isDigits(n)
}

// isEntryPoint reports whether the compiled function sym (the part of its
// name after the package path) is one through which outside code can enter
// its package: see the comment at the top of this file.
func isEntryPoint(sym string) bool {
	if n, ok := strings.CutPrefix(sym, "init"); ok && (n == "" || n[0] == '.' && isDigits(n[1:])) {
		return false // the package's initializers
	}
	if strings.Contains(sym, "-fm") || strings.Contains(sym, "-range") {
		return true // a method value or the body of a range-over-func loop
	}
	parts := splitTop(sym)
	for _, p := range parts[1:] {
		if isClosure(bareName(p)) {
			return true
		}
	}
	name := bareName(parts[len(parts)-1])
	r, _ := utf8.DecodeRuneInString(name)
	return unicode.IsUpper(r)
}

// moduleOf returns the module whose code package pkg (a binary package path)
// is: the longest module path of the binary that is pkg or a prefix of it
// ending at a slash, "stdlib" for the standard library and "toolchain" for
// cmd/..., or "".
func (m *matcher) moduleOf(pkg string) string {
	if mod, ok := m.pkgMod[pkg]; ok {
		return mod
	}
	mod := ""
	switch first, _, _ := strings.Cut(pkg, "/"); {
	case pkg == "main":
		mod = m.bin.Main.Path
	case strings.ContainsAny(pkg, ":"):
		// Linker-made names (type:.eq...), no package.
	case !strings.Contains(first, "."):
		mod = osv.ModuleStdlib
		if first == "cmd" {
			mod = osv.ModuleToolchain
		}
	default:
		for _, p := range m.modPaths {
			if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(p) > len(mod) {
				mod = p
			}
		}
	}
	m.pkgMod[pkg] = mod
	return mod
}

// ownerPaths lists the paths of all of bin's modules, main module and
// dependencies, replaced or not and with a version or not: the modules a
// package can belong to (moduleOf). It is more than binaryModules, which
// keeps only the modules that can be checked: a package of an unchecked
// module must not be taken for one of a shorter module path.
func ownerPaths(bin *binfo.Binary) []string {
	var paths []string
	if p := bin.Main.Path; p != "" {
		paths = append(paths, p)
	}
	for _, d := range bin.Deps {
		paths = append(paths, d.Path)
	}
	return paths
}

// moduleSymbol returns the symbol standing for the whole module mod, whose
// Funcs are its entry points, or nil when no code of mod is in the
// binary.
func (m *matcher) moduleSymbol(mod string) *Symbol {
	idx := m.index()
	sc := scope{}
	for pkg := range idx.byPkg {
		if m.moduleOf(pkg) == mod {
			sc[pkg] = true
		}
	}
	if len(sc) == 0 {
		return nil
	}
	return scopeSymbol(idx, mod, ScopeModule, sc)
}

// packageSymbol returns the symbol standing for the whole package path (as
// the entry spells it), or nil when no code of it is in the binary.
func (m *matcher) packageSymbol(path string) *Symbol {
	idx, pkg := m.index(), m.binaryPkg(path)
	if len(idx.byPkg[pkg]) == 0 {
		return nil
	}
	return scopeSymbol(idx, path, ScopePackage, scope{pkg: true})
}

func scopeSymbol(idx *index, name string, kind Scope, sc scope) *Symbol {
	s := &Symbol{Package: name, Scope: kind, scope: sc}
	pkgs := make([]string, 0, len(sc))
	for p := range sc {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, p := range pkgs {
		for _, cs := range idx.byPkg[p] {
			for _, c := range cs {
				// The runtime enters package main at main.main.
				if _, sym := splitFuncName(c.name); isEntryPoint(sym) || c.name == "main.main" {
					s.Funcs = append(s.Funcs, &Func{Name: c.name})
				}
			}
		}
	}
	return s
}
