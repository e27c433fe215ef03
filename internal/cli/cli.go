// Package cli implements reach's command line: its subcommands, flags,
// output files and exit codes. cmd/reach only calls Run and ExitCode.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Version is reach's version, set at link time with
// -ldflags=-X=github.com/reach-sca/reach/internal/cli.Version=v1.2.3, or
// read from the build information.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// env is what every subcommand works with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
}

type command struct {
	name, args, short string
	run               func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"scan", "[flags] BINARY...", "list the vulnerable modules and symbols linked into Go binaries", runScan},
		{"run", "[flags] -- PROG [ARGS...]", "run a program and report the vulnerable functions it executes", runRun},
		{"attach", "[flags] PID...", "observe running processes and report the vulnerable functions they execute", runAttach},
		{"db", "info | show ID... | lookup MODULE@VERSION...", "inspect the vulnerability database", runDB},
		{"version", "", "print reach's version", runVersion},
	}
}

// Run runs reach with the command-line arguments args (without the program
// name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if len(args) == 0 {
		usage(stderr)
		return usageError("no command given")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			if name != "run" {
				// run passes signals on to its program instead.
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
			}
			return c.run(ctx, e, args[1:])
		}
	}
	return usageError("unknown command %q", name)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "reach tells which known vulnerabilities a Go program actually executes.\n\nUsage:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  reach %s %s\n      %s\n", c.name, c.args, c.short)
	}
	fmt.Fprintf(w, "\nRun 'reach COMMAND -h' for a command's flags. Exit codes: 0 nothing found at or\nabove the threshold, 3 found, 1 error, 2 usage.\n")
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fmt.Fprintf(e.stdout, "reach %s\n", version())
	return nil
}

// newFlagSet returns a flag set whose errors become usage errors and whose
// help goes to stderr.
func newFlagSet(e *env, name, args, doc string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: reach %s %s\n\n%s\n\nFlags:\n", name, args, strings.TrimSpace(doc))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors (exit 2)
// and -h into a clean exit.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return true, nil
		}
		return false, usageError("%s: %v", fs.Name(), err)
	}
	return false, nil
}
