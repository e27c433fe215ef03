package testprog

import (
	"io"
	"os/exec"
	"testing"
)

// StartPiped starts cmd with pipes to its standard input and output, and
// returns them; cmd's other settings (standard error among them) are the
// caller's. It fails the test when cmd cannot start.
func StartPiped(tb testing.TB, cmd *exec.Cmd) (stdin io.WriteCloser, stdout io.ReadCloser) {
	tb.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	return stdin, stdout
}
