package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

const runDoc = `
Run starts PROG with ARGS under observation and reports, when it exits, which
vulnerable functions it and every program it starts executed: the
vulnerability, the callsite in the application, when first and how often.

Probes are armed before a program runs any Go code (package init included),
in PROG and in each child process it starts. Standard input, output and error
pass through untouched; SIGINT and SIGTERM are passed on to PROG. reach exits
with PROG's exit status, or 128+N when signal N ended it; with -fail-on, a
program that exits 0 with findings at or above the threshold makes reach exit
3. A program that cannot be started makes reach exit as env does: 127 when
it is not found, 126 when it cannot be executed (permissions, a directory,
another machine's binary), with no report. The report goes to -o FILE, or to
standard error.

Needs root, or CAP_BPF with CAP_PERFMON, and Linux 6.6 or later.`

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "run", "[flags] -- PROG [ARGS...]", runDoc)
	var o observeFlags
	fs.stopAtArgs = true // reach run -v -- PROG -v: the second is PROG's
	o.register(fs.FlagSet, "never", "standard error")
	merge := fs.Bool("merge", false, "merge the report into the JSON report in -o FILE (one document for many runs, such as go test -exec 'reach run -merge -format json -o FILE --' ./...); needs -o and -format json")
	fs.BoolVar(&o.goTools, "go-tools", false, "observe the Go toolchain's own programs too (the go command, compile, link, vet...), which are not observed by default")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	if *merge && (o.out == "" || o.format != "json") {
		return usageError("-merge: give -o FILE and -format json: reach merges into the JSON report in FILE")
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return usageError("run: no program given: reach run [flags] -- PROG [ARGS...]")
	}
	e.setVerbose(o.v)
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if serr := startFailure(argv[0], err); serr != nil {
			return serr
		}
		return fmt.Errorf("run %s: %w", argv[0], err)
	}

	// Signals go to the program, not to reach: reach stops when it exits.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer func() {
		signal.Stop(sigs)
		close(sigs) // ends forwardSignals
	}()

	s, err := startSession(ctx, e, &o, "run", path)
	if err != nil {
		return err
	}
	if n := goTestCacheNote(argv, os.Getenv("GOFLAGS")); n != "" {
		s.Note(n)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	// *os.File streams (the usual case) are handed to the program as they
	// are; exec copies others.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fwd := forwardSignals(sigs, cancel)
	code, runErr := s.Run(runCtx, cmd, fwd)
	if serr := startFailure(argv[0], runErr); serr != nil {
		s.finish() // nothing ran: no report
		return serr
	}
	r, finErr := s.finish()
	var sendErr error
	if r != nil {
		write := func() error { return writeObserved(e, &o.outputFlags, e.stderr, r) }
		if *merge {
			write = func() error { _, err := mergeReport(o.out, r); return err }
		}
		// The report is written first, then sent (-server): a server
		// that is down loses nothing.
		err := write()
		sendErr = o.server.send(ctx, e, r)
		if err != nil {
			return errors.Join(runErr, err, sendErr)
		}
	}
	if runErr != nil {
		return errors.Join(runErr, finErr, sendErr)
	}
	if finErr != nil {
		printError(e.stderr, finErr)
	}
	if code != 0 {
		if sendErr != nil {
			printError(e.stderr, sendErr)
		}
		return &statusError{code: code}
	}
	if sendErr != nil {
		return sendErr
	}
	return checkThreshold(r, o.failOn)
}

// forwardSignals passes the signals reach receives on to the program. A
// SIGINT typed at the terminal reaches the program directly, as it is in
// the terminal's foreground process group: it is not sent a second time. A
// second signal after the first one stops the observation: the program gets
// SIGTERM (and SIGKILL 5s later) and the report is written.
func forwardSignals(in <-chan os.Signal, stop context.CancelFunc) <-chan os.Signal {
	out := make(chan os.Signal, 8)
	go func() {
		defer close(out)
		n := 0
		for sig := range in {
			n++
			if n > 1 {
				stop()
			}
			if sig == syscall.SIGINT && terminalForeground() {
				continue
			}
			out <- sig
		}
	}()
	return out
}

// goTestCacheNote returns a note for the report when argv runs go test in
// a way that may reuse cached test results: go test then prints
// "(cached)" for a package and runs no test binary, so reach sees none.
// goflags is $GOFLAGS, which may set -count too.
func goTestCacheNote(argv []string, goflags string) string {
	if len(argv) < 2 || filepath.Base(argv[0]) != "go" || argv[1] != "test" {
		return ""
	}
	for _, a := range append(argv[2:], strings.Fields(goflags)...) {
		if a == "--" || a == "-args" || a == "--args" {
			break // the test binaries' arguments follow
		}
		if a == "-count" || a == "--count" || strings.HasPrefix(a, "-count=") || strings.HasPrefix(a, "--count=") {
			return ""
		}
	}
	return "go test may have reused cached test results: a package that go test reports as (cached) ran no test binary, and is not in this report; go test -count=1 runs every package's tests"
}
