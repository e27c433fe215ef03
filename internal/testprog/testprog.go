// Package testprog builds Go programs for tests, in the variants that matter
// to reach: plain, stripped, PIE, inlining-heavy and older toolchains.
//
// Builds are cached for the life of the test process and shared by all tests
// in it; the binaries live in a directory removed by Cleanup (call it from
// TestMain) or left in the system temp directory otherwise.
package testprog

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Variant is one way to build a program.
type Variant struct {
	Name      string
	Stripped  bool   // -ldflags=-s -w
	PIE       bool   // -buildmode=pie
	GCFlags   string // such as "-l=4" for aggressive inlining
	Toolchain string // GOTOOLCHAIN value, such as "go1.21.0"; "" for the local one
	Trimpath  bool   // -trimpath
	// Test builds the package's test binary (go test -c), whose build
	// information lists no dependencies, instead of the program.
	Test bool
	// Vendor builds from a copy of the package's module with its
	// dependencies vendored (go mod vendor, -mod=vendor).
	Vendor bool
	// CoverPkg, when set, builds with Go's coverage in count mode
	// (-cover -covermode=atomic) for these packages (-coverpkg): run the
	// binary with GOCOVERDIR set (a test binary with -test.gocoverdir),
	// and read which functions ran with CoveredFuncs, or the counts with
	// ReadCoverage.
	CoverPkg string
}

// Common variants.
var (
	Plain    = Variant{Name: "plain"}
	Stripped = Variant{Name: "stripped", Stripped: true}
	PIE      = Variant{Name: "pie", PIE: true}
	// Inlined builds with the compiler's most aggressive (mid-stack) inlining.
	Inlined = Variant{Name: "inlined", GCFlags: "-l=4"}
	// StrippedPIE combines both.
	StrippedPIE = Variant{Name: "stripped-pie", Stripped: true, PIE: true}
)

// Variants is the matrix most binary tests run over.
var Variants = []Variant{Plain, Stripped, PIE, Inlined}

var (
	mu     sync.Mutex
	outDir string
	builds = map[string]*build{}
	// toolchainCache is the module cache that ServeModules replaced,
	// where downloaded toolchains are.
	toolchainCache string
)

type build struct {
	once sync.Once
	path string
	err  error
}

// Build builds the main package in dir (which has its own go.mod) as variant
// v, and returns the binary's path. It fails the test if the build fails.
// Concurrent calls for the same program and variant build once.
func Build(t testing.TB, dir string, v Variant) string {
	t.Helper()
	path, err := build1(dir, v)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func build1(dir string, v Variant) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	key := abs + "|" + fmt.Sprintf("%+v", v)
	mu.Lock()
	if outDir == "" {
		outDir, err = os.MkdirTemp("", "reach-testprog-")
		if err != nil {
			mu.Unlock()
			return "", err
		}
	}
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	out := filepath.Join(outDir, fmt.Sprintf("%s-%s-%d", filepath.Base(abs), v.Name, len(builds)))
	mu.Unlock()

	b.once.Do(func() {
		b.path, b.err = goBuild(abs, out, v)
	})
	return b.path, b.err
}

func goBuild(dir, out string, v Variant) (string, error) {
	args := []string{"build", "-o", out}
	if v.Test {
		args = []string{"test", "-c", "-o", out}
	}
	args = append(args, fmt.Sprintf("-trimpath=%v", v.Trimpath))
	if v.Stripped {
		args = append(args, "-ldflags=-s -w")
	}
	if v.PIE {
		args = append(args, "-buildmode=pie")
	}
	if v.GCFlags != "" {
		args = append(args, "-gcflags=all="+v.GCFlags)
	}
	if v.CoverPkg != "" {
		args = append(args, "-cover", "-covermode=atomic", "-coverpkg="+v.CoverPkg)
	}
	args = append(args, ".")
	cmd := goCommand(v.Toolchain, args...)
	cmd.Dir = dir
	if v.Vendor {
		vdir, err := vendored(dir, out+".src", cmd.Env)
		if err != nil {
			return "", fmt.Errorf("vendor %s (%s): %w", dir, v.Name, err)
		}
		cmd.Dir = vdir
		cmd.Env = append(cmd.Env, "GOFLAGS=-mod=vendor")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s in %s (%s): %v\n%s", strings.Join(args, " "), dir, v.Name, err, stderr.String())
	}
	return out, nil
}

// vendored copies the module holding the package in dir to the new
// directory to, vendors its dependencies there, and returns the package's
// directory in the copy.
func vendored(dir, to string, env []string) (string, error) {
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		root = parent
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(to, os.DirFS(root)); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "mod", "vendor")
	cmd.Dir = to
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod vendor: %v\n%s", err, out)
	}
	return filepath.Join(to, rel), nil
}

// goCommand returns the go command with args, of the toolchain named by
// GOTOOLCHAIN value toolchain ("" for the local one), with cgo off and
// modules resolved as needed.
//
// After ServeModules, which turns the checksum database off (the go
// command then refuses to download a toolchain), a toolchain already in
// the usual module cache runs from there.
func goCommand(toolchain string, args ...string) *exec.Cmd {
	mu.Lock()
	cache := toolchainCache
	mu.Unlock()
	if toolchain != "" && cache != "" {
		bin := filepath.Join(cache, "golang.org", "toolchain@v0.0.1-"+toolchain+"."+runtime.GOOS+"-"+runtime.GOARCH, "bin", "go")
		if _, err := os.Stat(bin); err == nil {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
			return cmd
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+toolchain)
	} else {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN=local")
	}
	return cmd
}

// Cleanup removes every binary built so far.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if outDir != "" {
		os.RemoveAll(outDir)
		outDir = ""
		builds = map[string]*build{}
		reachBuild = build{}
	}
}

// Dir returns the absolute path of testdata/progs/name at the repository
// root, where the shared fixture programs live.
func Dir(t testing.TB, name string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "testdata", "progs", name)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "reach")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repository root not found above the working directory")
		}
		dir = parent
	}
}

// RealDB returns the directory of the real Go vulnerability database that
// tests read, from $REACH_TEST_VULNDB. It skips the test when the variable
// is unset, except under CI=true, where a skip would hide the test: there
// it fails it.
func RealDB(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("REACH_TEST_VULNDB")
	if dir == "" {
		Skip(tb, "REACH_TEST_VULNDB is unset: point it at a copy of the Go vulnerability database in the v1 layout (such as ../shared/vulndb)")
	}
	return dir
}

// RequireRoot skips a test that needs root (eBPF probes), except under
// CI=true, where a skip would hide the test: there it fails it.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Skip(tb, "this test needs root (or CAP_BPF with CAP_PERFMON) for eBPF probes")
}

// Skip skips the test for reason, except under CI=true, where a skip would
// hide the test: there it fails it.
func Skip(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(reason + "; CI=true forbids skipping this test")
	}
	tb.Skip(reason)
}

// OtherUID is the unprivileged user that tests of attacks run as: a
// numeric ID with no /etc/passwd entry, so that a fresh machine needs no
// set-up.
const OtherUID = 54321

// SharedDir returns a new empty directory whose ancestors up to the system
// temporary directory OtherUID may search, with owner uid and mode perm
// (os.ModeSticky|0o777 for a directory like /tmp).
func SharedDir(tb testing.TB, uid int, perm os.FileMode) string {
	tb.Helper()
	base := tb.TempDir()
	d := filepath.Join(base, "shared")
	if err := os.Mkdir(d, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chown(d, uid, uid); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(d, perm); err != nil {
		tb.Fatal(err)
	}
	// t.TempDir's directories are root's, mode 0700.
	for _, p := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(p, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}
