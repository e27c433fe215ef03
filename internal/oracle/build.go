package oracle

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reach-sca/reach/internal/covdata"
)

// Case is one program or test suite to observe: built twice (plain and
// with coverage) and run with and without reach.
type Case struct {
	// Name names the case in results and in the work directory.
	Name string
	// Module, "path@version", is a module fetched through the module
	// proxy whose Package is built. It is built from a module of its own
	// that requires it, so that the binary records the module's version
	// (its own build would be the main module at "(devel)", which no
	// entry matches) and its files keep their module-cache paths.
	Module string
	// Dir, when Module is "", is a local module (such as a fixture of
	// testdata/progs) whose Package is built.
	Dir string
	// Package is the import path of the package to build ("." in Dir).
	Package string
	// Test builds the package's test binary (go test -c) and runs it with
	// -test.v; otherwise the package is a command.
	Test bool
	// Args are passed to the program, after -test.v and friends for tests.
	Args []string
	// Toolchain is the GOTOOLCHAIN to build with ("go1.21.0"); "" for the
	// local one.
	Toolchain string
	// PIE and Stripped build with -buildmode=pie and -ldflags=-s -w.
	PIE, Stripped bool
}

// Package is what the harness needs of a package the binary contains, from
// go list.
type Package struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	Module     *struct {
		Path    string
		Version string
		Main    bool
	}
}

// workspace is a case prepared for building: the module to build in, the
// go command's environment and what go list says about the package.
type workspace struct {
	c       Case
	dir     string // the module the go command runs in
	runDir  string // where the program runs: its package's source for tests
	env     []string
	goVer   string     // such as "go1.21.0"
	pkgs    []*Package // every package of the binary, without test variants
	mainPkg *Package
}

// prepare sets up the module to build c in, under work, and lists the
// packages the binary will contain.
func prepare(ctx context.Context, work string, c Case) (*workspace, error) {
	w := &workspace{c: c, env: []string{"GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOTOOLCHAIN=" + cmp.Or(c.Toolchain, "local")}}
	switch {
	case c.Module != "":
		mod, ver, ok := strings.Cut(c.Module, "@")
		if !ok {
			return nil, fmt.Errorf("case %s: module %q has no @version", c.Name, c.Module)
		}
		w.dir = filepath.Join(work, c.Name, "mod")
		if err := os.MkdirAll(w.dir, 0o755); err != nil {
			return nil, err
		}
		// "go 1.21" builds with every toolchain the cases use.
		gomod := fmt.Sprintf("module oracle.invalid/%s\n\ngo 1.21\n\nrequire %s %s\n", c.Name, mod, ver)
		if err := os.WriteFile(filepath.Join(w.dir, "go.mod"), []byte(gomod), 0o644); err != nil {
			return nil, err
		}
	case c.Dir != "":
		dir, err := filepath.Abs(c.Dir)
		if err != nil {
			return nil, err
		}
		w.dir = dir
	default:
		return nil, fmt.Errorf("case %s: neither a module nor a directory", c.Name)
	}
	out, err := goCmd(ctx, w.dir, w.env, "env", "GOVERSION")
	if err != nil {
		return nil, err
	}
	w.goVer = strings.TrimSpace(string(out))
	args := []string{"list", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,Module"}
	if c.Test {
		args = append(args, "-test")
	}
	out, err = goCmd(ctx, w.dir, w.env, append(args, c.Package)...)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list %s: %w", c.Package, err)
		}
		// Test variants ("p [p.test]") have the files of p; the test
		// main package and external _test packages hold test files only,
		// which coverage does not count.
		path, _, _ := strings.Cut(p.ImportPath, " ")
		if strings.HasSuffix(path, ".test") || strings.HasSuffix(path, "_test") || seen[path] {
			continue
		}
		seen[path] = true
		pkg := p
		pkg.ImportPath = path
		w.pkgs = append(w.pkgs, &pkg)
		if path == c.Package || (c.Dir != "" && p.Module != nil && p.Module.Main && pkg.Dir == w.dir) {
			w.mainPkg = &pkg
		}
	}
	if w.mainPkg == nil {
		w.mainPkg = w.pkgs[len(w.pkgs)-1]
	}
	w.runDir = w.dir
	if c.Test {
		w.runDir = w.mainPkg.Dir
	}
	return w, nil
}

// build builds the case into out, with coverage of the packages in
// coverPkgs when that is not empty.
func (w *workspace) build(ctx context.Context, out string, coverPkgs []string) error {
	var args []string
	if w.c.Test {
		args = []string{"test", "-c", "-vet=off"}
	} else {
		args = []string{"build"}
	}
	args = append(args, "-o", out)
	if w.c.PIE {
		args = append(args, "-buildmode=pie")
	}
	if w.c.Stripped {
		args = append(args, "-ldflags=-s -w")
	}
	if len(coverPkgs) > 0 {
		args = append(args, "-cover", "-covermode=atomic", "-coverpkg="+strings.Join(coverPkgs, ","))
	}
	_, err := goCmd(ctx, w.dir, w.env, append(args, w.c.Package)...)
	return err
}

// coverable is whether package p can be built with coverage: cmd/go
// refuses the runtime, its internal packages and a few the coverage
// runtime itself uses.
func coverable(p *Package) bool {
	if !p.Standard {
		return true
	}
	if slices.Contains(strings.Split(p.ImportPath, "/"), "internal") || strings.HasPrefix(p.ImportPath, "vendor/") {
		return false
	}
	switch p.ImportPath {
	case "runtime", "unsafe", "sync/atomic", "internal/abi":
		return false
	}
	return true
}

// readCoverage reads the counter files in dir (written through GOCOVERDIR
// or -test.gocoverdir) and maps them onto the functions of pkgs, running
// the go command with env.
func readCoverage(ctx context.Context, env []string, dir string, pkgs []*Package) (*covdata.Coverage, error) {
	prof, err := covdata.ReadProfile(ctx, env, dir)
	if err != nil {
		return nil, err
	}
	src := make([]covdata.Package, len(pkgs))
	for i, p := range pkgs {
		src[i] = covdata.Package{ImportPath: p.ImportPath, Dir: p.Dir, GoFiles: p.GoFiles}
	}
	return prof.Map(src)
}

// goCmd runs the go command in dir with env added and returns its standard
// output; the error carries its standard error.
func goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}
