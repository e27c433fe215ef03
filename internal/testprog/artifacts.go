package testprog

import (
	"os"
	"path/filepath"
	"testing"
)

// Artifacts returns the directory, created if needed, where a test keeps
// files for people to look at after the run (screenshots, for one):
// $REACH_ARTIFACTS/name, or .ci/artifacts/name under the repository's root
// when the variable is unset. CI keeps the directory; git ignores it.
func Artifacts(tb testing.TB, name string) string {
	tb.Helper()
	base := os.Getenv("REACH_ARTIFACTS")
	if base == "" {
		root, err := repoRoot()
		if err != nil {
			tb.Fatal(err)
		}
		base = filepath.Join(root, ".ci", "artifacts")
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("artifacts: %v", err)
	}
	return dir
}
