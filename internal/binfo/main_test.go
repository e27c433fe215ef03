package binfo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testprog.Cleanup()
	os.Exit(code)
}

// Toolchain variants: the oldest pclntab layout reach reads (Go 1.18/1.19,
// magic 0xfffffff0) and a Go 1.20+ one older than the local toolchain.
var (
	go121    = testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"}
	go119    = testprog.Variant{Name: "go1.19.13", Toolchain: "go1.19.13"}
	go119PIE = testprog.Variant{Name: "go1.19.13-pie", Toolchain: "go1.19.13", PIE: true}
)

// allVariants is every build the binary tests run over.
var allVariants = []testprog.Variant{
	testprog.Plain, testprog.Stripped, testprog.PIE, testprog.Inlined, testprog.StrippedPIE,
	go121, go119, go119PIE,
}

// fixture builds testdata/<name> as variant v and opens it.
func fixture(t *testing.T, name string, v testprog.Variant) *Binary {
	t.Helper()
	if testing.Short() && v.Toolchain != "" {
		t.Skip("-short: skipping builds with other toolchains")
	}
	path := testprog.Build(t, filepath.Join("testdata", name), v)
	b, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// lookup returns the function named name, failing the test when absent.
func lookup(t *testing.T, b *Binary, name string) *Func {
	t.Helper()
	for i := range b.Funcs {
		if b.Funcs[i].Name == name {
			return &b.Funcs[i]
		}
	}
	t.Fatalf("%s: no function %s", b.Path, name)
	return nil
}
