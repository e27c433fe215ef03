package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/reach-sca/reach/internal/observe"
)

const attachDoc = `
Attach observes running Go processes: it arms probes on the vulnerable
functions of each one's executable and reports which ones run, from which
callsite, when first and how often. Calls made before reach attached are not
seen; the report says when observation began.

Attach stops on SIGINT or SIGTERM, when every process has exited, or after
-for, then removes every probe and writes the report (to -o FILE, or to
standard output). The processes keep running, with none of their code
left patched. A process that is not a Go program, or that exits while reach
arms it, is reported as such; the others are observed.

Needs root, or CAP_BPF with CAP_PERFMON, and Linux 6.6 or later.`

func runAttach(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "attach", "[flags] PID...", attachDoc)
	var o observeFlags
	o.register(fs.FlagSet, "reached", "standard output")
	dur := fs.Duration("for", 0, "stop after this long (such as 30s or 1h); 0 waits for a signal or for the processes to exit")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("attach: no process given: reach attach [flags] PID...")
	}
	if *dur < 0 {
		return usageError("-for %s: must not be negative", *dur)
	}
	var pids []int
	for _, a := range fs.Args() {
		pid, err := strconv.Atoi(a)
		if err != nil || pid <= 0 {
			return usageError("attach: %q is not a process ID", a)
		}
		pids = append(pids, pid)
	}
	e.setVerbose(o.v)

	// Run stops ctx on SIGINT and SIGTERM.
	s, err := startSession(ctx, e, &o, "attach")
	if err != nil {
		return err
	}
	var attached []int
	for _, pid := range pids {
		if err := s.Add(ctx, pid); err != nil {
			// Add's errors name the process already.
			s.Note(err.Error())
			printError(e.stderr, err)
			continue
		}
		attached = append(attached, pid)
	}
	if len(attached) > 0 {
		fmt.Fprintf(e.stderr, "reach: observing %d process(es); stop with ^C%s\n", len(attached), forText(*dur))
		waitAttached(ctx, s.Session, attached, *dur)
	}
	r, finErr := s.finish()
	var sendErr error
	if r != nil {
		// Written first, then sent (-server): a server that is down
		// loses nothing.
		err := writeObserved(e, &o.outputFlags, e.stdout, r)
		sendErr = o.server.send(ctx, e, r)
		if err != nil {
			return errors.Join(err, finErr, sendErr)
		}
	}
	if finErr != nil {
		return errors.Join(finErr, sendErr)
	}
	if sendErr != nil {
		return sendErr
	}
	if len(attached) == 0 {
		return errors.New("no process could be observed: see the errors above")
	}
	return checkThreshold(r, o.failOn)
}

func forText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf(", or wait %s", d)
}

// waitAttached returns when ctx is done, after d (if not 0), or when every
// one of pids has exited.
func waitAttached(ctx context.Context, s *observe.Session, pids []int, d time.Duration) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timeout:
			return
		case <-tick.C:
			if !slices.ContainsFunc(pids, func(pid int) bool { return !s.Exited(pid) }) {
				return
			}
		}
	}
}
