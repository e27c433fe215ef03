//go:build linux

package keeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Client is the engine's end: it starts the keeper process and sends it
// requests. It is safe for concurrent use.
type Client struct {
	regMu sync.Mutex // register
	log   *slog.Logger
	conn  *net.UnixConn
	cmd   *exec.Cmd
	wmu   sync.Mutex // writes

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan response
	progs   map[*ebpf.Program]uint8 // registered with the keeper
	err     error                   // set when the connection broke
	gone    chan struct{}           // closed when the reply reader stopped
	exited  chan struct{}           // closed when the process was waited for

	// dropped is set once the keeper was left to close the links of a
	// process that is gone: stop then does not wait for the keeper.
	dropped atomic.Bool
}

// ErrNoHook reports a program that did not call RunKeeperIfRequested.
var ErrNoHook = errors.New("this program does not call probe.RunKeeperIfRequested first in main (or TestMain)")

// Start starts a keeper process and waits for its greeting; classic
// says whether it makes classic uprobes or uprobe_multi links, which need
// different capabilities (Caps).
func Start(ctx context.Context, log *slog.Logger, classic bool) (_ *Client, err error) {
	if !Hook.Load() {
		return nil, ErrNoHook
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create the keeper socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(pair[0]), "keeper socket"), os.NewFile(uintptr(pair[1]), "keeper socket")
	defer theirs.Close()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("open the keeper socket: %w", err)
	}
	conn := c.(*net.UnixConn)
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	// /proc/self/exe runs this very file even if it was replaced or removed
	// since.
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{exe}
	// Nothing of the caller's environment: the keeper reads none.
	cmd.Env = []string{Env + "=1"}
	cmd.Stdin, cmd.Stdout = devnull, devnull
	// Its messages reach this process's standard error through a pipe of
	// this process: the keeper may outlive it by a few milliseconds (see
	// release), and must not hold its standard error, a pipe a caller may
	// be waiting on, meanwhile.
	errRead, errWrite, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create the keeper's error pipe: %w", err)
	}
	cmd.Stderr = errWrite
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = startConfined(cmd, Caps(classic))
	errWrite.Close()
	if err != nil {
		errRead.Close()
		return nil, fmt.Errorf("start %s as the probe keeper: %w", exe, err)
	}
	go func() {
		io.Copy(os.Stderr, errRead)
		errRead.Close()
	}()
	k := &Client{
		log:     log,
		conn:    conn,
		cmd:     cmd,
		pending: map[uint64]chan response{},
		progs:   map[*ebpf.Program]uint8{},
		gone:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	greeting := make(chan error, 1)
	go func() {
		defer close(k.exited)
		cmd.Wait()
	}()
	go k.readReplies(greeting)
	select {
	case err = <-greeting:
	case <-time.After(startTimeout):
		err = fmt.Errorf("no greeting within %s", startTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		cmd.Process.Kill()
		return nil, fmt.Errorf("start the probe keeper %s: %w", exe, err)
	}
	log.DebugContext(ctx, "probe keeper started", "pid", cmd.Process.Pid)
	return k, nil
}

// readReplies hands replies to the requests waiting for them.
func (k *Client) readReplies(greeting chan<- error) {
	defer close(k.gone)
	greeted := false
	for {
		body, fds, err := readRaw(k.conn)
		closeFDs(fds)
		var r response
		if err == nil {
			r, err = decodeReply(body)
		}
		if err != nil {
			if !greeted {
				greeting <- err
			} else if !errors.Is(err, net.ErrClosed) {
				// Not the engine closing: the keeper died, and every
				// probe with it.
				k.log.Warn("the probe keeper is gone: its probes are removed, nothing more is observed", "pid", k.cmd.Process.Pid, "err", err)
			}
			k.fail(fmt.Errorf("probe keeper connection: %w", err))
			return
		}
		if !greeted {
			greeted = true
			greeting <- nil
			continue
		}
		k.mu.Lock()
		ch := k.pending[r.ID]
		delete(k.pending, r.ID)
		k.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// fail ends every waiting request with err.
func (k *Client) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil {
		k.err = err
	}
	for id, ch := range k.pending {
		ch <- response{ID: id, Err: toWire(k.err)}
		delete(k.pending, id)
	}
}

// call sends req and waits for its reply.
func (k *Client) call(req request, fds ...int) (response, error) {
	ch := make(chan response, 1)
	k.mu.Lock()
	if k.err != nil {
		err := k.err
		k.mu.Unlock()
		return response{}, err
	}
	k.next++
	req.ID = k.next
	k.pending[req.ID] = ch
	k.mu.Unlock()
	k.wmu.Lock()
	err := writeFrame(k.conn, appendRequest(make([]byte, 4, 256), req), fds)
	k.wmu.Unlock()
	if err != nil {
		k.mu.Lock()
		delete(k.pending, req.ID)
		k.mu.Unlock()
		return response{}, fmt.Errorf("send to the probe keeper: %w", err)
	}
	r := <-ch
	if r.Err != nil && r.Errs == nil {
		return r, r.Err.err()
	}
	return r, nil
}

// register sends prog to the keeper once, under key.
func (k *Client) register(prog *ebpf.Program, key uint8) error {
	// Held across the request: two callers sending the same program at
	// once would make the keeper replace (and close) the first copy while
	// an attach may use it.
	k.regMu.Lock()
	defer k.regMu.Unlock()
	k.mu.Lock()
	_, done := k.progs[prog]
	k.mu.Unlock()
	if done {
		return nil
	}
	if _, err := k.call(request{Op: opProg, Prog: key}, prog.FD()); err != nil {
		return fmt.Errorf("hand the BPF program to the probe keeper: %w", err)
	}
	k.mu.Lock()
	k.progs[prog] = key
	k.mu.Unlock()
	return nil
}

// Arming asks for the probes of one arming (a group in one process): the
// sites at Offsets with their Cookies, in process PID (0: every process).
type Arming struct {
	ID      uint32
	PID     int
	Offsets []uint64
	Cookies []uint64
}

// Result is the outcome of attaching one Arming.
type Result struct {
	Err  error
	Site int // the failing site of a classic attach; -1 for the whole link
}

// Attach asks the keeper for the links of armings, all in the executable
// at path, with prog (a uprobe_multi program when multi is set, else a
// classic one), in one message, and returns the result of each.
func (k *Client) Attach(prog *ebpf.Program, multi bool, path string, armings []Arming) ([]Result, error) {
	key := progClassic
	if multi {
		key = progMulti
	}
	if err := k.register(prog, key); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	req := request{Op: opAttach}
	for _, a := range armings {
		req.Attach = append(req.Attach, attachRequest{ID: a.ID, Prog: key, Path: abs, PID: a.PID, Offsets: a.Offsets, Cookies: a.Cookies})
	}
	r, err := k.call(req)
	if err != nil {
		return nil, err
	}
	if len(r.Errs) != len(armings) {
		return nil, fmt.Errorf("the probe keeper answered %d attach results for %d groups", len(r.Errs), len(armings))
	}
	res := make([]Result, len(r.Errs))
	for i, e := range r.Errs {
		res[i] = Result{Err: e.Err.err(), Site: e.Site}
	}
	return res, nil
}

// Close asks the keeper to close the links of armings and returns once
// they are closed.
func (k *Client) Close(ids ...uint32) error {
	_, err := k.call(request{Op: opClose, Close: ids})
	return err
}

// Drop asks the keeper to close the links of armings whose processes are
// gone, and returns without waiting for them to close.
func (k *Client) Drop(ids ...uint32) error {
	k.dropped.Store(true)
	_, err := k.call(request{Op: opDrop, Close: ids})
	return err
}

// release closes the connection, which makes the keeper close every link
// it still holds and exit, and returns without waiting for that: the
// engine closed the links of running processes itself. The keeper's exit
// is logged.
func (k *Client) release() {
	k.conn.Close()
	go func() {
		<-k.exited
		<-k.gone
		if st := k.cmd.ProcessState; st != nil && !st.Success() {
			k.log.Warn("the probe keeper exited after the engine closed", "pid", k.cmd.Process.Pid, "state", st.String())
		}
	}()
}

// Stop closes the connection, which makes the keeper close every link it
// still holds and exit, and waits for it to exit; once links were dropped
// (their processes gone, their closing maybe still under way), it releases
// the keeper instead.
func (k *Client) Stop() error {
	if k.dropped.Load() {
		k.release()
		return nil
	}
	k.conn.Close()
	select {
	case <-k.exited:
	case <-time.After(time.Minute):
		return fmt.Errorf("the probe keeper (process %d) did not exit within a minute of the engine closing", k.cmd.Process.Pid)
	}
	<-k.gone
	if st := k.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("the probe keeper (process %d) %s", k.cmd.Process.Pid, st)
	}
	return nil
}

// Warm has the keeper register a WarmLink, which it keeps until it next
// closes links.
func (k *Client) Warm(prog *ebpf.Program, path string) error {
	if err := k.register(prog, progMulti); err != nil {
		return err
	}
	_, err := k.call(request{Op: opWarm, Prog: progMulti, Attach: []attachRequest{{Path: path}}})
	return err
}

// PID returns the keeper process's ID.
func (k *Client) PID() int { return k.cmd.Process.Pid }
