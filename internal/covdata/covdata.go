// Package covdata reads what Go's coverage counted in the runs of a binary
// built with -cover -covermode=atomic (its GOCOVERDIR, or a test binary's
// -test.gocoverdir), mapped onto the source of the covered packages: how
// often each declared function was called, and how often each line ran.
// It owes nothing to reach: tests (through testprog) and the oracle
// (package oracle) use it as the independent account of what ran.
//
// cmd/cover starts a function's first block at the opening brace of its
// body and increments that block's counter as the body's first statement,
// so the counter of the block that starts at the brace counts the calls of
// the function, whatever the compiler later inlines; any later block only
// says that part of the body ran. A closure (func literal) is a function of
// its own here, as it is in the binary (pkg.F.func1), but OSV names only
// declared functions and methods: Calls holds those.
package covdata

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/cover"
)

// Profile is what the counter files of a coverage directory say: the
// count of each block of the covered packages' source.
type Profile struct {
	blocks map[blockKey]blockCount
}

// blockKey names a coverage block by where it starts: "importpath/file.go",
// line and column, as the coverage profile writes them.
type blockKey struct {
	file      string
	line, col int
}

// blockCount is where a block ends and how often it ran.
type blockCount struct {
	endLine, endCol int
	count           uint64
}

// ReadProfile converts the counter files in dir with `go tool covdata
// textfmt`, running the go command with env added to this process's
// environment.
func ReadProfile(ctx context.Context, env []string, dir string) (*Profile, error) {
	tmp, err := os.MkdirTemp("", "covdata-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "profile.txt")
	cmd := exec.CommandContext(ctx, "go", "tool", "covdata", "textfmt", "-i="+dir, "-o="+file)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool covdata textfmt -i=%s: %w\n%s", dir, err, stderr.Bytes())
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := parseProfile(f)
	if err != nil {
		return nil, fmt.Errorf("coverage profile of %s: %w", dir, err)
	}
	return p, nil
}

// parseProfile reads a text coverage profile ("mode: atomic", then
// "file:l0.c0,l1.c1 stmts count" per block) with golang.org/x/tools/cover.
// A block listed more than once (several counter files) gets the sum of
// its counts.
func parseProfile(r io.Reader) (*Profile, error) {
	profiles, err := cover.ParseProfilesFromReader(r)
	if err != nil {
		return nil, err
	}
	p := &Profile{blocks: make(map[blockKey]blockCount)}
	for _, prof := range profiles {
		for _, b := range prof.Blocks {
			k := blockKey{prof.FileName, b.StartLine, b.StartCol}
			bc := p.blocks[k]
			bc.endLine, bc.endCol = b.EndLine, b.EndCol
			bc.count += uint64(b.Count)
			p.blocks[k] = bc
		}
	}
	return p, nil
}

// Packages returns the import paths of the covered packages, sorted.
func (p *Profile) Packages() []string {
	seen := make(map[string]bool)
	for k := range p.blocks {
		seen[path.Dir(k.file)] = true
	}
	pkgs := make([]string, 0, len(seen))
	for pkg := range seen {
		pkgs = append(pkgs, pkg)
	}
	slices.Sort(pkgs)
	return pkgs
}

// Package is a package's source, as `go list` gives it.
type Package struct {
	ImportPath string
	Dir        string
	GoFiles    []string
}

// Coverage is what Go's coverage saw run, per source function: how often
// each function was entered (Calls), and per source line (Line).
type Coverage struct {
	// Calls is the number of calls of each declared function and method,
	// keyed by package path and then by the name an OSV entry gives it:
	// "F", "T.M" for methods on T or *T (type parameters dropped), and
	// "init#N" for the package's Nth init function in file order.
	Calls map[string]map[string]uint64
	// Covered is the set of packages whose counters the binary had.
	Covered map[string]bool
	// lines holds the blocks of each source file mapped, by absolute path.
	lines map[string][]lineBlock
}

type lineBlock struct {
	start, end linecol
	count      uint64
}

type linecol struct{ line, col int }

func (a linecol) before(b linecol) bool {
	return a.line < b.line || a.line == b.line && a.col < b.col
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

// Line returns how many times the statements on line of file (an absolute
// path in a package mapped) ran: the count of the innermost block that
// holds the line.
func (c *Coverage) Line(file string, line int) (n uint64, ok bool) {
	var best *lineBlock
	for i, b := range c.lines[file] {
		if b.start.line > line || b.end.line < line {
			continue
		}
		if best == nil || best.start.before(b.start) {
			best = &c.lines[file][i]
		}
	}
	if best == nil {
		return 0, false
	}
	return best.count, true
}

// String counts the functions and packages known, for failure messages.
func (c *Coverage) String() string {
	n := 0
	for _, calls := range c.Calls {
		n += len(calls)
	}
	return strconv.Itoa(n) + " functions in " + strconv.Itoa(len(c.Covered)) + " covered packages"
}

// Map gives each declared function of pkgs the count of the block that
// starts at its body's opening brace, and each of their files its blocks.
// Packages without any block in the profile were not covered.
func (p *Profile) Map(pkgs []Package) (*Coverage, error) {
	covered := make(map[string]bool)
	for k := range p.blocks {
		covered[path.Dir(k.file)] = true
	}
	cov := &Coverage{Calls: make(map[string]map[string]uint64), Covered: make(map[string]bool), lines: make(map[string][]lineBlock)}
	for _, pkg := range pkgs {
		if !covered[pkg.ImportPath] {
			continue
		}
		cov.Covered[pkg.ImportPath] = true
		funcs, err := declaredFuncs(pkg)
		if err != nil {
			return nil, err
		}
		calls := make(map[string]uint64, len(funcs))
		for _, fn := range funcs {
			b, ok := p.blocks[blockKey{pkg.ImportPath + "/" + fn.file, fn.line, fn.col}]
			if !ok && fn.empty {
				// An empty body's block starts just after its brace.
				b, ok = p.blocks[blockKey{pkg.ImportPath + "/" + fn.file, fn.line, fn.col + 1}]
			}
			if !ok {
				// A function without a block of its own: cmd/cover skips
				// nothing it can count, so this source is not what was
				// built (such as a file of another toolchain).
				return nil, fmt.Errorf("coverage has no block for %s.%s at %s:%d:%d: the source read is not the source built", pkg.ImportPath, fn.name, fn.file, fn.line, fn.col)
			}
			calls[fn.name] += b.count
		}
		cov.Calls[pkg.ImportPath] = calls
		for k, b := range p.blocks {
			if path.Dir(k.file) == pkg.ImportPath {
				file := filepath.Join(pkg.Dir, path.Base(k.file))
				cov.lines[file] = append(cov.lines[file], lineBlock{start: linecol{k.line, k.col}, end: linecol{b.endLine, b.endCol}, count: b.count})
			}
		}
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
func declaredFuncs(p Package) ([]funcDecl, error) {
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
