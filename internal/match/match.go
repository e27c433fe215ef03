// Package match matches a Go binary's modules and functions against OSV
// entries of the Go vulnerability database. Its output says, per OSV entry,
// whether a vulnerable symbol is linked into the binary (as a function of
// its own or as an inlined copy) or only its module is present, and lists
// the probe sites a runtime engine needs to watch each symbol.
//
// # Versions
//
// Each module of the binary is checked at the version it was built at: the
// main module unless it is "(devel)", each dependency (at its replacement's
// version when replaced; a replacement by a local directory has no version
// and is reported in Result.Unchecked, as govulncheck skips it), and
// "stdlib" and "toolchain" at the binary's Go version (see semver.FromGo).
// A test binary's build information lists no dependencies: binfo infers
// them, with their versions, from the source file paths, and they are
// checked the same way (binfo.Module.Inferred).
//
// # Names
//
// An OSV symbol is a source-level function, "Parse" or "Decoder.Decode".
// It matches every compiled function that implements it, in the pclntab or
// inlined into another function:
//
//	Parse           pkg.Parse, pkg.Parse[go.shape.int] (generic instantiations),
//	                pkg.Parse.func1, pkg.Parse.func1.2 (closures),
//	                pkg.Parse.gowrap1, pkg.Parse.deferwrap1, pkg.Parse-range1
//	Decoder.Decode  pkg.(*Decoder).Decode, pkg.Decoder.Decode (and the
//	                compiler's wrappers for the other receiver),
//	                pkg.(*Decoder[go.shape.int]).Decode, pkg.(*Decoder).Decode-fm
//	                (method values), and their closures
//	init#1          pkg.init.0, the package's first init function
//
// and nothing else: not pkg.ParseX, pkg.(*T).Parse, pkg.Decoder.DecodeAll
// or other.Decoder.Decode. The package path is read as the linker writes
// it, with the dots of its last element escaped (gopkg.in/yaml%2ev2), and
// it ends before any type arguments, whose text may hold dots, slashes and
// quoted struct tags.
//
// # Entries without symbol data
//
// An import that lists no symbols makes the whole package vulnerable, and
// an entry that names no package of a module the whole module: one Symbol
// with Name "" and Scope ScopePackage or ScopeModule, linked
// by any code of it, whose Funcs are its entry points (see scope.go).
//
// Functions of package main are named "main.F" in binaries: an entry that
// names the main package by its import path matches them when that path
// is known: Options.MainPackage, else the binary's build information
// (binfo.Binary.MainPackage).
//
// Known gap: the standard library's vendored copies
// (vendor/golang.org/x/net/...) are not matched against entries of the
// vendored modules, as govulncheck does not either.
package match

import (
	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
)

// Result is the match of one binary against a set of OSV entries.
type Result struct {
	Binary   *binfo.Binary
	Findings []*Finding // sorted by OSV ID
	// Unchecked lists the modules of the binary that could not be checked
	// against any entry because their version is unknown, in the order of
	// the build information.
	Unchecked []Unchecked
}

// Unchecked is a module of the binary that Match could not check.
type Unchecked struct {
	Module  string // module path, or "stdlib" and "toolchain"
	Version string // the version the binary records, if any
	Reason  string
}

// Finding is one OSV entry that affects the binary.
type Finding struct {
	Entry *osv.Entry
	// Module is the affected module path as the OSV entry names it
	// ("stdlib" and "toolchain" for the Go distribution).
	Module string
	// Version is the module version in the binary, with a leading "v": the
	// replacement's version for a replaced module, and the Go version
	// (go1.21.0 is v1.21.0) for stdlib and toolchain.
	Version string
	// FixedVersion is the lowest version above Version that fixes the entry,
	// with a leading "v", or "" when no fix exists.
	FixedVersion string
	// Status is Linked when at least one vulnerable symbol is in the
	// binary, and Imported otherwise.
	Status Status
	// Symbols lists the vulnerable symbols present in the binary, sorted by
	// package and name. Empty for Imported findings.
	Symbols []*Symbol
	// WholeModule is set when the entry names no package of Module (it has
	// no symbol data): Symbols then holds one symbol of scope
	// ScopeModule, and the finding is linked when any code of the
	// module is in the binary. See scope.go.
	WholeModule bool
}

// Symbol is one vulnerable symbol of an OSV entry present in the binary.
type Symbol struct {
	// Package and Name are as the OSV entry spells them ("Decoder.Decode").
	// Name is "" when the OSV entry lists the package without symbols, which
	// means the whole package is vulnerable (Scope ScopePackage), or
	// names no package of the module (Scope ScopeModule, Package is
	// then the module path).
	Package, Name string
	Scope         Scope
	// Funcs are the compiled forms of the symbol found in the binary. For
	// a whole package or module, they are its entry points (see scope.go),
	// and may be empty when only its initialization is linked.
	Funcs []*Func
	scope scope // the code of a whole package or module
}

// Func is one compiled function that implements a vulnerable symbol: the
// function itself, a method on a pointer or value receiver, a generic
// instantiation, a closure inside it or a method-value wrapper.
type Func struct {
	// Name is the compiled name, such as "example.com/p.(*List[...]).Push".
	// The pclntab writes the type arguments of every instantiation as
	// "[...]", so one name can stand for several functions: Sites then
	// covers all of them.
	Name string
	// Sites are where a probe observes executions of the function: its entry site
	// when the function has code of its own, and where execution enters
	// each copy of it inlined into other functions. Sorted by PC.
	Sites []Site
	// SiteErr, when not nil, says which sites could not be computed (it
	// joins one error per copy): those executions cannot be watched. The
	// symbol is linked all the same.
	SiteErr error
}

// Site is a probe site of a compiled function.
type Site struct {
	binfo.Site
	// In is the function whose code holds the site: Func.Name for an
	// entry site, the caller for an inlined copy.
	In string
}
