package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/probe/execwatch"
)

// Run starts cmd, observes it and every program it and its descendants
// execute, and waits for it to exit. It returns the program's exit status:
// its exit code, or 128+N when signal N killed it.
//
// Each program is armed before it executes its first instruction, so calls
// in package init are seen: the kernel stops a followed process at exec
// (execwatch.Watcher), the session analyses the new executable and arms
// its probes for that process, then continues it. Programs that are not
// Go run on untouched. The stop is a SIGSTOP: a parent in the observed tree
// that waits for its children with WUNTRACED (a shell with job control)
// sees it.
//
// cmd's standard input, output and error are the caller's to set; Run does
// not touch them. Signals received on signals are forwarded to the
// program; when ctx is done the program gets SIGTERM, and SIGKILL 5s later
// if it is still running. Run returns an error
// only when the program could not be started or waited for; a non-zero
// exit status is not an error.
//
// Run follows the processes that the calling process forks while cmd
// starts; do not start other programs from this process at the same time.
func (s *Session) Run(ctx context.Context, cmd *exec.Cmd, signals <-chan os.Signal) (int, error) {
	w, err := s.execWatcher()
	if err != nil {
		return -1, err
	}
	// The program's probes are armed as soon as it starts: have the
	// kernel's grace period before the first probe pass meanwhile.
	s.engine.Warm(ctx, cmd.Path)
	self := os.Getpid()
	s.spawnMu.Lock()
	if err := w.Follow(self); err != nil {
		s.spawnMu.Unlock()
		return -1, err
	}
	err = cmd.Start()
	// The go command forks with vfork: when Start returns, the child has
	// executed the program (and was stopped there).
	uerr := w.Unfollow(self)
	s.spawnMu.Unlock()
	if err != nil {
		return -1, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	if uerr != nil {
		s.log.Warn("stop following reach's own children", "err", uerr)
	}

	waited := make(chan struct{})
	defer close(waited)
	go func() {
		for {
			select {
			case <-waited:
				return
			case <-ctx.Done():
				// Give the program a chance to exit cleanly.
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-waited:
				case <-time.After(killDelay):
					cmd.Process.Kill()
				}
				return
			case sig, ok := <-signals:
				if !ok {
					signals = nil
					continue
				}
				if err := cmd.Process.Signal(sig); err != nil {
					s.log.Debug("forward signal", "signal", sig, "err", err)
				}
			}
		}
	}()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if sig, ok := signalled(exitErr); ok {
			return 128 + sig, nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	return 0, nil
}

// killDelay is how long Run waits after SIGTERM before it kills the
// program when its context is done.
const killDelay = 5 * time.Second

// newExecWatcher starts an exec watcher as opts configure it.
func newExecWatcher(opts Options) (*execwatch.Watcher, error) {
	return execwatch.New(context.Background(), execwatch.Options{Logger: opts.Logger, CacheDir: opts.CacheDir})
}

// execWatcher starts the session's exec watcher on first use.
func (s *Session) execWatcher() (*execwatch.Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.watcher != nil {
		return s.watcher, nil
	}
	w, err := newExecWatcher(s.opts)
	if err != nil {
		return nil, fmt.Errorf("start following programs: %w", err)
	}
	s.watcher = w
	s.wg.Add(1)
	go s.handleExecs(w)
	return w, nil
}

// handleExecs arms each program a followed process executes, in parallel,
// and continues the process.
func (s *Session) handleExecs(w *execwatch.Watcher) {
	defer s.wg.Done()
	for e := range w.Execs() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			start := time.Now()
			defer func() {
				if err := w.Continue(e.PID); err != nil {
					s.log.Warn("continue a process stopped at exec", "pid", e.PID, "err", err)
				}
				s.log.Debug("continued a process stopped at exec", "pid", e.PID, "stopped", time.Since(start))
			}()
			err := s.add(context.Background(), e.PID, true)
			switch {
			case err == nil:
			case errors.Is(err, ErrGoTool):
				s.skippedTool(err)
				s.log.Debug("not observed", "pid", e.PID, "err", err)
			case errors.Is(err, binfo.ErrNotGoBinary), errors.Is(err, ErrClosed):
				s.log.Debug("not observed", "pid", e.PID, "err", err)
			case errors.Is(err, ErrExited):
				s.rec.Note(err.Error())
			default:
				s.log.Warn("observe a started program", "pid", e.PID, "err", err)
				s.rec.Note(err.Error())
			}
		}()
	}
}
