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
		{"server", serverArgs, "run reach server: the fleet's findings, remote configuration, triage and dashboard", runServer},
		{"db", "info | show ID... | lookup MODULE@VERSION...", "inspect the vulnerability database", runDB},
		{"version", "", "print reach's version", runVersion},
	}
}

// Run runs reach with the command-line arguments args (without the program
// name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	e.log = newPlainLogger(stderr)
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
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("reach "+c.name+" "+c.args), c.short)
	}
	fmt.Fprintf(w, "\nRun 'reach COMMAND -h' for a command's flags. Exit codes: 0 nothing found at or\nabove the threshold, 3 found, 1 error, 2 usage, 126 and 127 (run) the program\ncould not be started.\n")
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version", "", "Version prints reach's version.")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("version: unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintf(e.stdout, "reach %s\n", version())
	return nil
}

// flagSet is a command's flags with what its help says.
type flagSet struct {
	*flag.FlagSet
	e          *env
	args, doc  string
	stopAtArgs bool // no flags after the first argument (run: they are PROG's)
}

// newFlagSet returns the flag set of command name, whose usage line shows
// args and whose help (-h, on standard output) shows doc.
func newFlagSet(e *env, name, args, doc string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse reports errors through its return value alone: parseFlags
	// turns them into one usage error.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, e: e, args: args, doc: doc}
}

func (fs *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("reach "+fs.Name()+" "+fs.args), strings.TrimSpace(fs.doc))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parseFlags parses args, turning flag errors into usage errors (exit 2)
// and -h into help on standard output and a clean exit. Flags may come
// before, between and after the arguments, as users type them (reach scan
// BIN -format json), except where stopAtArgs is set; "--" ends them.
func parseFlags(fs *flagSet, args []string) (help bool, err error) {
	if !fs.stopAtArgs {
		args = flagsFirst(fs.FlagSet, args)
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.printHelp(fs.e.stdout)
			return true, nil
		}
		return false, &UsageError{Err: fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	return false, nil
}

// flagsFirst reorders args so that the flags come first, then "--", then
// the other arguments in their order. A flag's value is the next argument
// unless the flag is boolean or written -name=value; everything after "--"
// is an argument, and so is "-".
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 == len(args) {
			// No value: let Parse say so, rather than take "--" for it.
			return flags
		}
		i++
		flags = append(flags, args[i])
	}
	return append(append(flags, "--"), rest...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
