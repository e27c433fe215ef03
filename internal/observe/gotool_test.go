package observe

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestGoTool checks goTool on the real programs of the Go toolchain, the
// local one and go1.21.0 (every file of GOTOOLDIR, and the go command):
// each is a Go tool; and on a program and a test binary built from a
// fixture, which are not.
func TestGoTool(t *testing.T) {
	for _, tc := range []string{"", "go1.21.0"} {
		t.Run(cmp.Or(tc, "local"), func(t *testing.T) {
			// The go command's own settings, not TestMain's module proxy
			// (setupFixtures), under which a toolchain cannot be verified.
			var env []string
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); k != "GOPROXY" && k != "GOSUMDB" && k != "GOMODCACHE" {
					env = append(env, kv)
				}
			}
			env = append(env, "GOTOOLCHAIN="+cmp.Or(tc, "local"))
			out, err := goEnv(t.TempDir(), env, "GOTOOLDIR", "GOROOT")
			if err != nil {
				t.Fatal(err)
			}
			toolDir, goroot := out[0], out[1]
			tools, err := filepath.Glob(filepath.Join(toolDir, "*"))
			if err != nil || len(tools) < 5 {
				t.Fatalf("tools in %s: %q, %v", toolDir, tools, err)
			}
			tools = append(tools, filepath.Join(goroot, "bin", "go"))
			for _, p := range tools {
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				pkg, ok := goTool(f)
				f.Close()
				if !ok || pkg != "cmd/"+filepath.Base(p) {
					t.Errorf("%s: goTool = %q, %v; want cmd/%s, true", p, pkg, ok, filepath.Base(p))
				}
			}
			if tc != "" {
				return // TestRunGoTest runs go1.21.0's test binaries, observed
			}
			dir := testprog.Dir(t, "textyaml")
			for _, v := range []testprog.Variant{{Name: "plain"}, {Name: "test", Test: true}} {
				d := dir
				if v.Test {
					d = filepath.Join(dir, "textlang")
				}
				bin := testprog.Build(t, d, v)
				f, err := os.Open(bin)
				if err != nil {
					t.Fatal(err)
				}
				if pkg, ok := goTool(f); ok {
					t.Errorf("%s (%s): goTool = %q, true; want false", bin, v.Name, pkg)
				}
				f.Close()
			}
		})
	}
}

// goEnv returns the values of go env names, in dir and env.
func goEnv(dir string, env []string, names ...string) ([]string, error) {
	cmd := exec.Command("go", append([]string{"env"}, names...)...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return nil, fmt.Errorf("go env %s: %w\n%s", strings.Join(names, " "), err, ee.Stderr)
	}
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}
