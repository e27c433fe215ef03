package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"strings"
	"syscall"

	"github.com/reach-sca/reach/internal/report"
)

// usageError reports a wrong command line: exit 2.
func usageError(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// statusError passes an observed program's exit status on as reach's own,
// without a message.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("program exit status %d", e.code) }

// ExitCode returns the code for the status.
func (e *statusError) ExitCode() int { return e.code }

// startError is a program reach run could not start: exit 127 when it is
// not found, 126 when it cannot be executed, as env and the shells do.
type startError struct {
	code int
	err  error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }
func (e *startError) ExitCode() int { return e.code }

// startFailure returns the startError for err, from exec.LookPath or from
// starting the program named name, or nil when err is neither.
func startFailure(name string, err error) error {
	if err == nil {
		return nil
	}
	var execErr *exec.Error
	var pathErr *fs.PathError
	if !errors.As(err, &execErr) && !(errors.As(err, &pathErr) && pathErr.Op == "fork/exec") {
		return nil
	}
	code, msg := 126, ""
	switch {
	case errors.Is(err, exec.ErrNotFound):
		code, msg = 127, "command not found in $PATH"
	case errors.Is(err, fs.ErrNotExist):
		code, msg = 127, "no such file or directory"
	case errors.Is(err, syscall.EISDIR):
		msg = "is a directory"
	case errors.Is(err, fs.ErrPermission):
		msg = "permission denied: is it executable (chmod +x), on a file system mounted without noexec?"
	default:
		var ok bool
		if msg, ok = errnoMessage(err); !ok {
			return nil
		}
	}
	return &startError{code: code, err: fmt.Errorf("run %s: %s", name, msg)}
}

// ExitCode prints err to stderr, when it has something to say, and returns
// the process exit code for it (see exitCode).
func ExitCode(err error, stderr io.Writer) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	var se *statusError
	if errors.As(err, &se) {
		return code
	}
	printError(stderr, err)
	if code == ExitUsage {
		fmt.Fprintln(stderr, usageHint(err))
	}
	return code
}

// usageHint points at the help of the command a usage error names first
// ("scan: ..."), else at reach's.
func usageHint(err error) string {
	for _, c := range commands() {
		if strings.HasPrefix(err.Error(), c.name+":") || strings.HasPrefix(err.Error(), c.name+" ") {
			return fmt.Sprintf("Run 'reach %s -h' for usage.", c.name)
		}
	}
	return "Run 'reach help' for usage."
}

// printError writes err for people: "reach: " and the message, whose lines
// may quote a database, a binary or a file, with what could act on a
// terminal escaped (see report.Printable).
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "reach: %s\n", report.PrintableLines(err.Error()))
}

// Exit codes of reach's commands. They follow govulncheck's convention, with
// the "found" code moved to 3 so that 2 stays free for usage errors as most
// Unix tools use it:
//
//	0  nothing found at or above the threshold status
//	1  an error stopped the command (bad binary, unreadable database, ...)
//	2  usage error: bad flags or arguments
//	3  at least one finding at or above the threshold status
//
// The threshold is a report.Status: a finding counts when its status ranks at or
// above it (reached > not_watched > linked > imported): a symbol that reach
// did not watch all the time may have run unseen, which is worse than
// watched and not seen running (linked), but not as bad as seen running
// (reached). So "-fail-on reached" does not fail on symbols left out of the
// targets, "-fail-on not_watched" does, and "-fail-on linked" fails on any
// vulnerable code in the binary. The command chooses the default.
//
// Errors carry their exit code: any error in the chain with an ExitCode()
// method decides it (see exitCode); every other non-nil error exits 1.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
	ExitFound = 3
)

// ExitCoder is an error that decides the process's exit code.
type ExitCoder interface {
	error
	ExitCode() int
}

// exitCode returns the exit code for err: ExitOK for nil, the code of the
// first ExitCoder in err's chain, and ExitError otherwise.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitError
}

// FoundError reports findings at or above a threshold status. It is not a
// failure of reach: the report was written, and the exit code says that
// something was found.
type FoundError struct {
	Threshold report.Status
	Count     int // findings at or above Threshold
}

func (e *FoundError) Error() string {
	noun := "findings"
	if e.Count == 1 {
		noun = "finding"
	}
	return fmt.Sprintf("%d %s %s or worse", e.Count, noun, e.Threshold)
}

// ExitCode returns ExitFound.
func (e *FoundError) ExitCode() int { return ExitFound }

// UsageError reports bad flags or arguments.
type UsageError struct {
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }

func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode returns ExitUsage.
func (e *UsageError) ExitCode() int { return ExitUsage }

// check returns a *FoundError when r has findings at or above threshold,
// a *UsageError when threshold is no status, and nil otherwise.
func check(r *report.Report, threshold report.Status) error {
	if threshold.Rank() == 0 {
		return &UsageError{Err: fmt.Errorf("threshold %q: %w: use reached, not_watched, linked or imported", threshold, report.ErrBadStatus)}
	}
	if n := r.Count(threshold); n > 0 {
		return &FoundError{Threshold: threshold, Count: n}
	}
	return nil
}
