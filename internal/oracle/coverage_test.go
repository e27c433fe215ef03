package oracle

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestCoverageCountsCalls checks the fact the oracle rests on: the counter
// of the block that starts at a function's opening brace counts the
// function's calls, for closures (which do not add to their function),
// methods called by value, through the pointer wrapper and as method
// values, generic functions over several instantiations, loops, empty
// bodies, deferred closures and init functions, with both toolchains.
func TestCoverageCountsCalls(t *testing.T) {
	// The calls testdata/calls/main.go makes.
	want := map[string]uint64{
		"init#1": 1, "F": 3, "Loop": 5, "T.M": 4, "T.P": 4, "G": 3,
		"Empty": 2, "D": 2, "Never": 0, "main": 1,
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "calls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, toolchain := range []string{"", "go1.21.0"} {
		t.Run("toolchain="+toolchain, func(t *testing.T) {
			ctx := context.Background()
			w, err := prepare(ctx, t.TempDir(), Case{Name: "calls", Dir: dir, Package: ".", Toolchain: toolchain})
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(t.TempDir(), "calls")
			if err := w.build(ctx, bin, []string{w.mainPkg.ImportPath}); err != nil {
				t.Fatal(err)
			}
			covDir := t.TempDir()
			out, err := w.run(ctx, runSpec{bin: bin, covDir: covDir})
			if err != nil || out.Code != 0 {
				t.Fatalf("run: %v, exit %d", err, out.Code)
			}
			cov, err := readCoverage(ctx, w.env, covDir, w.pkgs)
			if err != nil {
				t.Fatal(err)
			}
			got := cov.Calls[w.mainPkg.ImportPath]
			for name, n := range want {
				if got[name] != n {
					t.Errorf("%s: coverage counts %d calls, the program makes %d", name, got[name], n)
				}
			}
			if len(got) != len(want) {
				t.Errorf("coverage has functions %v, want those of %v", got, want)
			}
			if !cov.Ran(w.mainPkg.ImportPath) {
				t.Error("Ran says no function of the package ran")
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testprog.Cleanup()
	os.Exit(code)
}
