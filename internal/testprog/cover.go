package testprog

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/cover"
)

// CoveredFuncs reads the coverage data that programs built with
// Variant.CoverPkg wrote to dir (their GOCOVERDIR) with `go tool covdata
// func`, and returns, for each function of the covered packages, whether
// any of its statements ran. Keys are "pkg.Func", "pkg.Type.Method" (the
// receiver's '*' dropped), as OSV entries name symbols.
func CoveredFuncs(dir string) (map[string]bool, error) {
	cmd := exec.Command("go", "tool", "covdata", "func", "-i="+dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool covdata func -i=%s: %v\n%s", dir, err, stderr.String())
	}
	ran := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		// "gopkg.in/yaml.v2/decode.go:317:	*decoder.unmarshal	66.7%"
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] == "total" || f[0] == "total:" {
			continue
		}
		file, _, ok := strings.Cut(f[0], ":")
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "%"), 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("go tool covdata func: unexpected line %q", sc.Text())
		}
		key := path.Dir(file) + "." + strings.TrimPrefix(f[1], "*")
		ran[key] = ran[key] || pct > 0
	}
	if len(ran) == 0 {
		return nil, fmt.Errorf("no coverage data in %s: was the program built with CoverPkg and run with GOCOVERDIR=%s?", dir, dir)
	}
	return ran, nil
}

// Coverage is what Go's coverage counted in the runs of a binary built
// with Variant.CoverPkg: how often each block of the covered packages ran.
// It is an oracle of which functions ran, and how often, that owes nothing
// to reach.
type Coverage struct {
	// blocks by source file, as an absolute path.
	blocks map[string][]coverBlock
	// funcs maps "pkg.Name" and "pkg.Recv.Name" (the receiver's type name
	// without "*" or type parameters) to the function's body.
	funcs map[string]funcBody
}

type coverBlock struct {
	start, end linecol
	count      uint64
}

type linecol struct{ line, col int }

func (a linecol) before(b linecol) bool {
	return a.line < b.line || a.line == b.line && a.col < b.col
}

type funcBody struct {
	file           string
	lbrace, rbrace linecol
}

// ReadCoverage reads the counters that binaries built from the program in
// dir (with toolchain, a GOTOOLCHAIN value) wrote under covDir (their
// GOCOVERDIR), with `go tool covdata textfmt`, and indexes the functions
// of the covered packages' source files.
func ReadCoverage(t testing.TB, toolchain, dir, covDir string) *Coverage {
	t.Helper()
	prof := filepath.Join(t.TempDir(), "cover.txt")
	cmd := goCommand(toolchain, "tool", "covdata", "textfmt", "-i="+covDir, "-o="+prof)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool covdata textfmt -i=%s: %v\n%s", covDir, err, out)
	}
	c, err := parseCoverage(toolchain, dir, prof)
	if err != nil {
		t.Fatalf("read coverage profile of %s: %v", covDir, err)
	}
	return c
}

func parseCoverage(toolchain, dir, prof string) (*Coverage, error) {
	profiles, err := cover.ParseProfiles(prof)
	if err != nil {
		return nil, err
	}
	byName := map[string][]coverBlock{}
	for _, p := range profiles {
		for _, b := range p.Blocks {
			byName[p.FileName] = append(byName[p.FileName], coverBlock{
				start: linecol{b.StartLine, b.StartCol},
				end:   linecol{b.EndLine, b.EndCol},
				count: uint64(b.Count),
			})
		}
	}
	pkgs := map[string]bool{}
	for name := range byName {
		pkgs[filepath.ToSlash(filepath.Dir(name))] = true
	}
	dirs, err := packageDirs(toolchain, dir, pkgs)
	if err != nil {
		return nil, err
	}
	c := &Coverage{blocks: map[string][]coverBlock{}, funcs: map[string]funcBody{}}
	fset := token.NewFileSet()
	for name, blocks := range byName {
		pkg := filepath.ToSlash(filepath.Dir(name))
		file := filepath.Join(dirs[pkg], filepath.Base(name))
		c.blocks[file] = blocks
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s (%s in the profile): %w", file, name, err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			key := pkg + "." + fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				key = pkg + "." + recvName(fd.Recv.List[0].Type) + "." + fd.Name.Name
			}
			lb, rb := fset.Position(fd.Body.Lbrace), fset.Position(fd.Body.Rbrace)
			c.funcs[key] = funcBody{file: file, lbrace: linecol{lb.Line, lb.Column}, rbrace: linecol{rb.Line, rb.Column}}
		}
	}
	return c, nil
}

// packageDirs returns the source directories of pkgs, as `go list` of
// toolchain in dir sees them.
func packageDirs(toolchain, dir string, pkgs map[string]bool) (map[string]string, error) {
	args := []string{"list", "-f", "{{.ImportPath}} {{.Dir}}"}
	for p := range pkgs {
		args = append(args, p)
	}
	cmd := goCommand(toolchain, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list the covered packages in %s: %w", dir, err)
	}
	dirs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, d, ok := strings.Cut(l, " "); ok {
			dirs[path] = d
		}
	}
	for p := range pkgs {
		if dirs[p] == "" {
			return nil, fmt.Errorf("go list does not know package %s", p)
		}
	}
	return dirs, nil
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.ParenExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

// Calls returns how many times the source function sym of package pkg
// ran ("Parse", "Reader.ReadMIMEHeader", as OSV entries spell symbols):
// the count of the first block of its body, which every call runs once.
// ok is false when the function is not in a covered file or has no
// block (an empty body).
func (c *Coverage) Calls(pkg, sym string) (n uint64, ok bool) {
	fb, ok := c.funcs[pkg+"."+sym]
	if !ok {
		return 0, false
	}
	first := -1
	var start linecol
	for i, b := range c.blocks[fb.file] {
		if b.start.before(fb.lbrace) || fb.rbrace.before(b.start) {
			continue
		}
		if first < 0 || b.start.before(start) {
			first, start = i, b.start
		}
	}
	if first < 0 {
		return 0, false
	}
	for _, b := range c.blocks[fb.file] {
		if b.start == start {
			n += b.count
		}
	}
	return n, true
}

// Line returns how many times the statements on line of file (an absolute
// path) ran: the count of the innermost block that holds the line.
func (c *Coverage) Line(file string, line int) (n uint64, ok bool) {
	var best *coverBlock
	for i, b := range c.blocks[file] {
		if b.start.line > line || b.end.line < line {
			continue
		}
		if best == nil || best.start.before(b.start) {
			best = &c.blocks[file][i]
		}
	}
	if best == nil {
		return 0, false
	}
	return best.count, true
}

// String lists the functions known, for failure messages.
func (c *Coverage) String() string {
	return strconv.Itoa(len(c.funcs)) + " functions in " + strconv.Itoa(len(c.blocks)) + " covered files"
}
