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
	return &report.UsageError{Err: fmt.Errorf(format, args...)}
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
	case errors.Is(err, syscall.ENOEXEC):
		msg = "exec format error: not a program this machine can run (built for another architecture or system?)"
	default:
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			return nil
		}
		msg = errno.Error()
	}
	return &startError{code: code, err: fmt.Errorf("run %s: %s", name, msg)}
}

// ExitCode prints err to stderr, when it has something to say, and returns
// the process exit code for it (see report.ExitCode).
func ExitCode(err error, stderr io.Writer) int {
	code := report.ExitCode(err)
	if err == nil {
		return code
	}
	var se *statusError
	if errors.As(err, &se) {
		return code
	}
	printError(stderr, err)
	if code == report.ExitUsage {
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
