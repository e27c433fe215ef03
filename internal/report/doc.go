package report

import (
	"errors"
	"fmt"
)

// Exit codes of reach's commands. They follow govulncheck's convention, with
// the "found" code moved to 3 so that 2 stays free for usage errors as most
// Unix tools use it:
//
//	0  nothing found at or above the threshold status
//	1  an error stopped the command (bad binary, unreadable database, ...)
//	2  usage error: bad flags or arguments
//	3  at least one finding at or above the threshold status
//
// The threshold is a Status: a finding counts when its status ranks at or
// above it (reached > not_watched > linked > imported): a symbol that reach
// did not watch all the time may have run unseen, which is worse than
// watched and not seen running (linked), but not as bad as seen running
// (reached). So "-fail-on reached" does not fail on symbols left out of the
// targets, "-fail-on not_watched" does, and "-fail-on linked" fails on any
// vulnerable code in the binary. The command chooses the default.
//
// Errors carry their exit code: any error in the chain with an ExitCode()
// method decides it (see ExitCode); every other non-nil error exits 1.
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

// ExitCode returns the exit code for err: ExitOK for nil, the code of the
// first ExitCoder in err's chain, and ExitError otherwise.
func ExitCode(err error) int {
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
	Threshold Status
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
