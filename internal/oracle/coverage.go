package oracle

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/tools/cover"
)

// Coverage is what Go's coverage saw run, per source function: how often
// each function was entered. It is read from the counters of a binary
// built with -cover -covermode=atomic and mapped onto the functions of the
// covered packages' source.
//
// cmd/cover starts a function's first block at the opening brace of its
// body and increments that block's counter as the body's first statement,
// so the counter of the block that starts at the brace counts the calls of
// the function, whatever the compiler later inlines; any later block only
// says that part of the body ran. A closure (func literal) is a function of
// its own here, as it is in the binary (pkg.F.func1), but OSV names only
// declared functions and methods: Calls holds those.
type Coverage struct {
	// Calls is the number of calls of each declared function and method,
	// keyed by package path and then by the name an OSV entry gives it:
	// "F", "T.M" for methods on T or *T (type parameters dropped), and
	// "init#N" for the package's Nth init function in file order.
	Calls map[string]map[string]uint64
	// Covered is the set of packages whose counters the binary had.
	Covered map[string]bool
}

// Ran says whether any function of package pkg other than its init
// functions ran: a whole-package entry's code ran. Coverage cannot tell
// a call made during initialization from a later one, so a function that
// only init calls counts as run here, while reach rightly leaves it out.
func (c *Coverage) Ran(pkg string) bool {
	for name, n := range c.Calls[pkg] {
		if n > 0 && !strings.HasPrefix(name, "init#") {
			return true
		}
	}
	return false
}

// blockKey names a coverage block by where it starts: "importpath/file.go",
// line and column, as the coverage profile writes them.
type blockKey struct {
	file      string
	line, col int
}

// ReadCoverage converts the counter files in dir (written through GOCOVERDIR
// or -test.gocoverdir) with `go tool covdata textfmt`, using env for the go
// command, and maps them onto the functions of pkgs, parsed from source.
func ReadCoverage(ctx context.Context, env []string, dir string, pkgs []*Package) (*Coverage, error) {
	profile := filepath.Join(dir, "profile.txt")
	if _, err := goCmd(ctx, "", env, "tool", "covdata", "textfmt", "-i="+dir, "-o="+profile); err != nil {
		return nil, err
	}
	f, err := os.Open(profile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blocks, err := parseProfile(f)
	if err != nil {
		return nil, fmt.Errorf("coverage profile %s: %w", profile, err)
	}
	return mapBlocks(blocks, pkgs)
}

// parseProfile reads a text coverage profile ("mode: atomic", then
// "file:l0.c0,l1.c1 stmts count" per block) with golang.org/x/tools/cover
// into the count of each block, keyed by where it starts. A block listed
// more than once (several counter files) gets the sum of its counts.
func parseProfile(r io.Reader) (map[blockKey]uint64, error) {
	profiles, err := cover.ParseProfilesFromReader(r)
	if err != nil {
		return nil, err
	}
	blocks := make(map[blockKey]uint64)
	for _, p := range profiles {
		for _, b := range p.Blocks {
			blocks[blockKey{p.FileName, b.StartLine, b.StartCol}] += uint64(b.Count)
		}
	}
	return blocks, nil
}

// mapBlocks gives each declared function of pkgs the count of the block
// that starts at its body's opening brace. Packages without any block in
// blocks were not covered.
func mapBlocks(blocks map[blockKey]uint64, pkgs []*Package) (*Coverage, error) {
	covered := make(map[string]bool)
	for k := range blocks {
		covered[path.Dir(k.file)] = true
	}
	cov := &Coverage{Calls: make(map[string]map[string]uint64), Covered: make(map[string]bool)}
	for _, p := range pkgs {
		if !covered[p.ImportPath] {
			continue
		}
		cov.Covered[p.ImportPath] = true
		funcs, err := declaredFuncs(p)
		if err != nil {
			return nil, err
		}
		calls := make(map[string]uint64, len(funcs))
		for _, fn := range funcs {
			n, ok := blocks[blockKey{p.ImportPath + "/" + fn.file, fn.line, fn.col}]
			if !ok && fn.empty {
				// An empty body's block starts just after its brace.
				n, ok = blocks[blockKey{p.ImportPath + "/" + fn.file, fn.line, fn.col + 1}]
			}
			if !ok {
				// A function without a block of its own: cmd/cover skips
				// nothing it can count, so this source is not what was
				// built (such as a file of another toolchain).
				return nil, fmt.Errorf("coverage has no block for %s.%s at %s:%d:%d: the source read is not the source built", p.ImportPath, fn.name, fn.file, fn.line, fn.col)
			}
			calls[fn.name] += n
		}
		cov.Calls[p.ImportPath] = calls
	}
	return cov, nil
}

// funcDecl is a declared function's OSV name and where its body starts.
type funcDecl struct {
	name      string
	file      string // base name
	line, col int    // of the body's opening brace
	empty     bool   // the body has no statement
}

// declaredFuncs parses the Go files of p and returns its declared
// functions and methods with bodies.
func declaredFuncs(p *Package) ([]funcDecl, error) {
	fset := token.NewFileSet()
	var out []funcDecl
	inits := 0
	for _, name := range p.GoFiles {
		file := filepath.Join(p.Dir, name)
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil || fd.Name.Name == "_" {
				// cmd/cover leaves functions named _ alone: they never run.
				continue
			}
			sym := fd.Name.Name
			switch {
			case fd.Recv != nil && len(fd.Recv.List) == 1:
				sym = recvName(fd.Recv.List[0].Type) + "." + sym
			case sym == "init":
				inits++
				sym = "init#" + strconv.Itoa(inits)
			}
			pos := fset.Position(fd.Body.Lbrace)
			out = append(out, funcDecl{name: sym, file: name, line: pos.Line, col: pos.Column, empty: len(fd.Body.List) == 0})
		}
	}
	return out, nil
}

// recvName returns the type name of a method's receiver: T for T, *T,
// T[K, V] and *T[K].
func recvName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.ParenExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return fmt.Sprintf("%T", e)
		}
	}
}
