// Command reach reports which known vulnerabilities a Go program actually
// executes. See README.md for its commands, flags and exit codes.
package main

import (
	"context"
	"os"

	"github.com/reach-sca/reach/internal/cli"
	"github.com/reach-sca/reach/internal/probe"
)

func main() {
	// First: this executable is also the probe engine's keeper process.
	probe.RunKeeperIfRequested()
	// cli.Run handles SIGINT and SIGTERM per command: most stop, and
	// "reach run" passes them on to the program it runs.
	err := cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	os.Exit(cli.ExitCode(err, os.Stderr))
}
