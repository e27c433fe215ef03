package testprog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"testing"

	"github.com/reach-sca/reach/internal/covdata"
)

// ReadCoverage reads the counters that binaries built with Variant.CoverPkg
// from the program in dir (with toolchain, a GOTOOLCHAIN value) wrote under
// covDir (their GOCOVERDIR), mapped onto the source of the covered packages
// as `go list` of toolchain in dir sees them (see package covdata). It is
// an oracle of which functions ran, and how often, that owes nothing to
// reach.
func ReadCoverage(t testing.TB, toolchain, dir, covDir string) *covdata.Coverage {
	t.Helper()
	c, err := readCoverage(toolchain, dir, covDir)
	if err != nil {
		t.Fatalf("read the coverage in %s: %v", covDir, err)
	}
	return c
}

// CoveredFuncs reads the coverage as ReadCoverage does and returns, for
// each declared function of the covered packages, whether it ran. Keys are
// "pkg.Func" and "pkg.Type.Method" (the receiver's '*' and type parameters
// dropped), as OSV entries name symbols.
func CoveredFuncs(t testing.TB, toolchain, dir, covDir string) map[string]bool {
	t.Helper()
	ran := map[string]bool{}
	for pkg, calls := range ReadCoverage(t, toolchain, dir, covDir).Calls {
		for name, n := range calls {
			ran[pkg+"."+name] = n > 0
		}
	}
	return ran
}

func readCoverage(toolchain, dir, covDir string) (*covdata.Coverage, error) {
	// The local go command reads the counters of every toolchain that
	// writes them (Go 1.20 on): the format has not changed. (After
	// ServeModules, a GOTOOLCHAIN naming another could not be fetched.)
	prof, err := covdata.ReadProfile(context.Background(), nil, covDir)
	if err != nil {
		return nil, err
	}
	pkgs := prof.Packages()
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no coverage data in %s: was the program built with CoverPkg and run with GOCOVERDIR=%s?", covDir, covDir)
	}
	src, err := listPackages(toolchain, dir, pkgs)
	if err != nil {
		return nil, err
	}
	return prof.Map(src)
}

// listPackages returns the source of pkgs, as `go list` of toolchain in
// dir sees them.
func listPackages(toolchain, dir string, pkgs []string) ([]covdata.Package, error) {
	cmd := goCommand(toolchain, append([]string{"list", "-json"}, pkgs...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%w\n%s", err, exitErr.Stderr)
		}
		return nil, fmt.Errorf("go list the covered packages in %s: %w", dir, err)
	}
	var src []covdata.Package
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p covdata.Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list the covered packages in %s: %w", dir, err)
		}
		src = append(src, p)
	}
	return src, nil
}
