package cli

import (
	"errors"
	"fmt"
	"io"

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
		fmt.Fprintln(stderr, "Run 'reach help' for usage.")
	}
	return code
}

// printError writes err for people: "reach: " and the message, whose lines
// may quote a database, a binary or a file, with what could act on a
// terminal escaped (see report.Printable).
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "reach: %s\n", report.PrintableLines(err.Error()))
}
