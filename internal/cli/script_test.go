package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/reach-sca/reach/internal/testprog"
)

// reachMain is the reach command of the scripts: this test binary, copied
// into $PATH as "reach" by testscript.Main, runs as cmd/reach does.
func reachMain() {
	err := Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	os.Exit(ExitCode(err, os.Stderr))
}

// TestScript runs the scripts of testdata/script: each runs reach's
// command line and checks its exit status (status N after a command) and
// output. They read the fixture database testdata/scriptdb ($DB) and scan
// or run the fixture program textyaml ($TEXTYAML, and $TEXTYAML_DIR its
// source). Scripts that run programs under observation begin with
// "[!root] skip": root is needed for eBPF, and under CI=true the root
// condition fails instead of skipping.
func TestScript(t *testing.T) {
	db, err := filepath.Abs(filepath.Join("testdata", "scriptdb"))
	if err != nil {
		t.Fatal(err)
	}
	textyaml := testprog.Dir(t, "textyaml")
	bin := testprog.Build(t, textyaml, testprog.Plain)
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("DB", db)
			env.Setenv("GOVULNDB", db)
			env.Setenv("TEXTYAML", bin)
			env.Setenv("TEXTYAML_DIR", textyaml)
			env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".cache"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond != "root" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if os.Geteuid() != 0 && os.Getenv("CI") == "true" {
				return false, errors.New("this script needs root for eBPF probes, and CI=true forbids skipping it")
			}
			return os.Geteuid() == 0, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status": cmdStatus,
		},
	})
}

// cmdStatus runs a command and checks its exit status: status N CMD
// ARGS... Its output is the command's, for stdout, stderr and cmp.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status %q: not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		got = exitErr.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s: exit status %d, want %d", args[1], got, want)
	}
}
