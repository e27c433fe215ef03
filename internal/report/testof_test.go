package report

import (
	"cmp"
	"os"
	"path/filepath"
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestTestOf checks testOf on real test binaries of textyaml/textlang
// built by the local toolchain (build information names the main package
// PKG.test) and by go1.21.0 and go1.19.13 (it names none: the file name
// and the test functions tell), under the name go test gives them and
// under another; and on the program built from the same code.
func TestTestOf(t *testing.T) {
	const pkg = "example.com/textyaml/textlang"
	dir := filepath.Join(testprog.Dir(t, "textyaml"), "textlang")
	for _, tc := range []string{"", "go1.21.0", "go1.19.13"} {
		t.Run(cmp.Or(tc, "local"), func(t *testing.T) {
			bin := testprog.Build(t, dir, testprog.Variant{Name: "test-" + tc, Test: true, Toolchain: tc})
			tmp := t.TempDir()
			for _, name := range []string{"textlang.test", "renamed.test"} {
				want := pkg
				if name != "textlang.test" && tc != "" {
					want = "" // nothing left to tell the package by
				}
				path := filepath.Join(tmp, name)
				link(t, bin, path)
				if got := testOfFile(t, path); got != want {
					t.Errorf("%s as %s: testOf = %q, want %q", bin, name, got, want)
				}
			}
			prog := testprog.Build(t, filepath.Join(dir, "cmd", "textlang"), testprog.Variant{Name: "prog-" + tc, Toolchain: tc})
			path := filepath.Join(tmp, "textlang.test") // named as a test binary
			os.Remove(path)
			link(t, prog, path)
			if got := testOfFile(t, path); got != "" {
				t.Errorf("program %s: testOf = %q, want none", prog, got)
			}
		})
	}
}

func testOfFile(t *testing.T, path string) string {
	t.Helper()
	bi, err := binfo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bi.Close()
	return testOf(bi)
}

// link makes to a symbolic link to from: the binary under another name.
func link(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Symlink(from, to); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testprog.Cleanup()
	os.Exit(code)
}
