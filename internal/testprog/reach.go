package testprog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var (
	// reachEnv is the module cache and proxy that ServeModules replaced:
	// reach's own dependencies are there, not in the fixtures' proxy.
	reachEnv   GoEnv
	reachBuild build
)

// Reach returns the path of the reach binary, built from cmd/reach once
// per test process (with the module cache and proxy in use before
// ServeModules, if it was called). It fails the test if the build fails.
func Reach(tb testing.TB) string {
	tb.Helper()
	reachBuild.once.Do(func() {
		reachBuild.path, reachBuild.err = buildReach()
	})
	if reachBuild.err != nil {
		tb.Fatal(reachBuild.err)
	}
	return reachBuild.path
}

func buildReach() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	mu.Lock()
	if outDir == "" {
		outDir, err = os.MkdirTemp("", "reach-testprog-")
	}
	out, env := filepath.Join(outDir, "reach"), reachEnv
	mu.Unlock()
	if err != nil {
		return "", err
	}
	cmd := goCommand("", "build", "-o", out, "./cmd/reach")
	cmd.Dir = root
	if env.ModCache != "" {
		cmd.Env = append(cmd.Env, "GOMODCACHE="+env.ModCache, "GOPROXY="+env.Proxy)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build reach: %v\n%s", err, stderr.String())
	}
	return out, nil
}
