package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// app is a running generated application.
type app struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	exit chan struct{}
}

func startApp(exe string) (*app, error) {
	cmd := exec.Command(exe)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	a := &app{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if line, err := a.read(); err != nil || line != "ready" {
		a.stop()
		return nil, fmt.Errorf("%s did not start: said %q: %v", exe, line, err)
	}
	return a, nil
}

func (a *app) pid() int { return a.cmd.Process.Pid }

func (a *app) read() (string, error) {
	if !a.out.Scan() {
		return "", fmt.Errorf("fixture process %d: output ended: %v", a.cmd.Process.Pid, a.out.Err())
	}
	return a.out.Text(), nil
}

func (a *app) ask(cmd string) (string, error) {
	if _, err := fmt.Fprintln(a.in, cmd); err != nil {
		return "", fmt.Errorf("fixture process %d: %w", a.pid(), err)
	}
	return a.read()
}

// armed returns how many of the application's functions carry a probe.
func (a *app) armed() (int, error) {
	line, err := a.ask("armed")
	if err != nil {
		return 0, err
	}
	v, ok := strings.CutPrefix(line, "armed ")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		return 0, fmt.Errorf("fixture process %d said %q to armed", a.pid(), line)
	}
	return n, nil
}

// errUnarmed reports a hit asked of a function that carries no probe.
var errUnarmed = errors.New("the function carries no probe")

// hit calls F<i> and returns when the call started and how long its probe
// took to go after that.
func (a *app) hit(i int) (time.Time, time.Duration, error) {
	line, err := a.ask(fmt.Sprintf("hit %d", i))
	if err != nil {
		return time.Time{}, 0, err
	}
	if line == "unarmed" {
		return time.Time{}, 0, fmt.Errorf("hit F%d: %w", i, errUnarmed)
	}
	var t0, ns int64
	if _, err := fmt.Sscanf(line, "gone %d %d", &t0, &ns); err != nil {
		return time.Time{}, 0, fmt.Errorf("fixture process %d said %q to hit", a.pid(), line)
	}
	if ns < 0 {
		return time.Time{}, 0, fmt.Errorf("hit F%d: its probe was still there 10s after the hit", i)
	}
	return time.Unix(0, t0), time.Duration(ns), nil
}

func (a *app) stop() {
	a.in.Close()
	a.cmd.Process.Kill()
	a.cmd.Wait()
}

// state describes the process's state, for errors: how it ended, if it did.
func (a *app) state() string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.pid()))
	if err == nil {
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && len(stat) > i+3 {
			return fmt.Sprintf("process state %c", stat[i+2])
		}
	}
	return "process gone"
}
