package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The keeper is a helper process that creates and owns the engine's probe
// links, so that the kernel removes the probes in a healthy process even
// when the engine's process dies by SIGKILL.
//
// Why: a link's probes are removed when the last file descriptor of the
// link is closed. When a process is killed, its descriptors are closed
// during its exit, by a thread with SIGKILL pending; the kernel then fails
// to write the original instruction back (get_user_pages_remote gives up on
// a fatal signal), logs "failed to unregister, leaking uprobe" and leaves
// the breakpoints in the observed program until it exits. The same happens
// when the process is killed while it creates a link. The keeper creates
// every link, holds its only descriptor, closes it when the engine asks,
// and, when the engine's end of their socket closes (the engine exited,
// however), closes every link it still holds and exits normally.
//
// The keeper is the engine's own executable (/proc/self/exe) started with
// keeperEnv set; RunKeeperIfRequested must run first in that program's main
// (or TestMain) to take that role. It runs in its own session, ignores the
// terminal's signals, and talks over a socket pair passed as file
// descriptor 3: frames of a 4-byte little-endian length and a message
// (wire_linux.go). Program descriptors travel with SCM_RIGHTS.

// keeperEnv names the environment variable that asks a process to be a
// keeper.
const keeperEnv = "REACH_PROBE_KEEPER"

// keeperFD is the keeper's end of the socket pair.
const keeperFD = 3

// keeperHook is set once RunKeeperIfRequested has run in this process: the
// executable then takes the keeper role when started as one.
var keeperHook atomic.Bool

// keeperStartTimeout bounds the wait for a new keeper's greeting.
const keeperStartTimeout = 5 * time.Second

const (
	opProg   uint8 = iota + 1 // register the program sent with SCM_RIGHTS as Prog
	opAttach                  // attach Attach
	opClose                   // close the links of Close
	opWarm                    // register and close a warmLink of Prog in Attach[0].Path
	opDrop                    // answer at once, then close the links of Close
)

// Program keys.
const (
	progMulti   uint8 = 1
	progClassic uint8 = 2
)

// keeperRequest is a message from the engine.
type keeperRequest struct {
	ID     uint64
	Op     uint8
	Prog   uint8
	Attach []keeperAttach
	Close  []uint32
}

// keeperAttach asks for the probes of one arming, kept under ID.
type keeperAttach struct {
	ID      uint32
	Prog    uint8
	Path    string
	PID     int
	Offsets []uint64
	Cookies []uint64
}

// keeperReply answers a request; ID 0 is the keeper's greeting.
type keeperReply struct {
	ID   uint64
	Err  *wireError
	Errs []attachResult // one per keeperAttach, in order
}

type attachResult struct {
	Err  *wireError
	Site int // the failing site of a classic attach; -1 for the whole link
}

// wireError carries an error across the socket with what the engine tests
// with errors.Is.
type wireError struct {
	Msg          string
	Errno        uintptr
	NotSupported bool
	NotExist     bool
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{
		Msg:          err.Error(),
		NotSupported: errors.Is(err, link.ErrNotSupported),
		NotExist:     errors.Is(err, os.ErrNotExist),
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		w.Errno = uintptr(errno)
	}
	return w
}

func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	return keeperError{*w}
}

// keeperError is an error the keeper reported.
type keeperError struct{ w wireError }

func (e keeperError) Error() string { return e.w.Msg }

func (e keeperError) Unwrap() []error {
	var errs []error
	if e.w.Errno != 0 {
		errs = append(errs, unix.Errno(e.w.Errno))
	}
	if e.w.NotSupported {
		errs = append(errs, link.ErrNotSupported)
	}
	if e.w.NotExist {
		errs = append(errs, os.ErrNotExist)
	}
	return errs
}

// runKeeperIfRequested takes the keeper role when keeperEnv asks for it,
// and never returns then.
func runKeeperIfRequested() {
	keeperHook.Store(true)
	if os.Getenv(keeperEnv) == "" {
		return
	}
	os.Unsetenv(keeperEnv)
	closeInherited()
	code := 0
	if err := runKeeper(os.NewFile(keeperFD, "keeper socket")); err != nil {
		fmt.Fprintf(os.Stderr, "reach probe keeper %d: %v\n", os.Getpid(), err)
		code = 1
	}
	os.Exit(code)
}

// keeperServer is the keeper's state.
type keeperServer struct {
	conn  *net.UnixConn
	wmu   sync.Mutex
	mu    sync.Mutex
	progs map[uint8]*ebpf.Program
	links map[uint32][]link.Link
	warm  []link.Link // warm links not closed yet
	work  sync.WaitGroup
}

func runKeeper(f *os.File) error {
	// Only the engine's end of the socket, closing, tells the keeper to
	// go: a signal would kill it with its links, as the engine would be.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("open socket: %w", err)
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("descriptor %d is a %T, not a unix socket", keeperFD, c)
	}
	s := &keeperServer{conn: conn, progs: map[uint8]*ebpf.Program{}, links: map[uint32][]link.Link{}}
	if err := s.reply(keeperReply{}); err != nil {
		return fmt.Errorf("greet the engine: %w", err)
	}
	// The keeper holds every link's descriptor.
	s.work.Go(func() { growFDTable(fdTableSize) })
	var rerr error
	for {
		req, fds, err := readFrame(conn)
		if err != nil {
			// A reset is an end too: the engine died with replies unread.
			if !errors.Is(err, io.EOF) && !errors.Is(err, unix.ECONNRESET) {
				rerr = fmt.Errorf("read a request: %w", err)
			}
			break
		}
		s.handle(req, fds)
	}
	// The engine is gone: finish what it asked, then remove every probe.
	s.work.Wait()
	s.mu.Lock()
	var all []uint32
	for id := range s.links {
		all = append(all, id)
	}
	s.mu.Unlock()
	return errors.Join(rerr, s.close(all))
}

func (s *keeperServer) handle(req keeperRequest, fds []int) {
	switch req.Op {
	case opProg:
		// Inline, so that the attach requests after it find the program.
		var err error
		if len(fds) != 1 {
			err = fmt.Errorf("program message with %d descriptors, want 1", len(fds))
		} else {
			var prog *ebpf.Program
			prog, err = ebpf.NewProgramFromFD(fds[0])
			fds = nil
			if err == nil {
				s.mu.Lock()
				if old := s.progs[req.Prog]; old != nil {
					old.Close()
				}
				s.progs[req.Prog] = prog
				s.mu.Unlock()
			}
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		s.reply(keeperReply{ID: req.ID, Err: toWire(err)})
	case opAttach:
		s.work.Go(func() {
			r := keeperReply{ID: req.ID, Errs: make([]attachResult, len(req.Attach))}
			exes := map[string]*link.Executable{}
			for i, a := range req.Attach {
				site, err := s.attach(exes, a)
				r.Errs[i] = attachResult{Err: toWire(err), Site: site}
			}
			s.reply(r)
		})
	case opWarm:
		s.work.Go(func() {
			s.mu.Lock()
			prog := s.progs[req.Prog]
			s.mu.Unlock()
			var err error
			switch {
			case prog == nil:
				err = fmt.Errorf("keeper: no program %d", req.Prog)
			case len(req.Attach) != 1:
				err = fmt.Errorf("keeper: warm request with %d paths, want 1", len(req.Attach))
			default:
				var l link.Link
				if l, err = warmLink(prog, req.Attach[0].Path); err == nil {
					// Closed with the next links closed, whose grace
					// periods it then shares.
					s.mu.Lock()
					s.warm = append(s.warm, l)
					s.mu.Unlock()
				}
			}
			s.reply(keeperReply{ID: req.ID, Err: toWire(err)})
		})
	case opDrop:
		// Inline, so that the links are gone from s.links before the
		// next request.
		s.mu.Lock()
		var todo []link.Link
		for _, id := range req.Close {
			todo = append(todo, s.links[id]...)
			delete(s.links, id)
		}
		s.mu.Unlock()
		s.reply(keeperReply{ID: req.ID})
		for _, l := range todo {
			s.work.Go(func() { l.Close() })
		}
	case opClose:
		s.work.Go(func() {
			s.reply(keeperReply{ID: req.ID, Err: toWire(s.close(req.Close))})
		})
	default:
		s.reply(keeperReply{ID: req.ID, Err: toWire(fmt.Errorf("unknown keeper operation %d", req.Op))})
	}
}

// attach creates the links of a and keeps them. It returns the index of the
// failing site of a classic attach, else -1.
func (s *keeperServer) attach(exes map[string]*link.Executable, a keeperAttach) (int, error) {
	s.mu.Lock()
	prog := s.progs[a.Prog]
	dup := s.links[a.ID] != nil
	s.mu.Unlock()
	if prog == nil {
		return -1, fmt.Errorf("keeper: no program %d", a.Prog)
	}
	if dup {
		return -1, fmt.Errorf("keeper: arming %d attached twice", a.ID)
	}
	ex := exes[a.Path]
	if ex == nil {
		var err error
		if ex, err = link.OpenExecutable(a.Path); err != nil {
			return -1, err
		}
		exes[a.Path] = ex
	}
	links, site, err := createLinks(ex, prog, a.Prog == progMulti, a.PID, a.Offsets, a.Cookies)
	if err != nil {
		return site, err
	}
	s.mu.Lock()
	s.links[a.ID] = links
	s.mu.Unlock()
	return -1, nil
}

// close closes the links of the armings, in parallel: closing one waits for
// the kernel's grace periods, 20-60 ms, mostly idle.
func (s *keeperServer) close(ids []uint32) error {
	var todo []link.Link
	s.mu.Lock()
	warm := s.warm
	s.warm = nil
	for _, id := range ids {
		todo = append(todo, s.links[id]...)
		delete(s.links, id)
	}
	s.mu.Unlock()
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, l := range todo {
		wg.Go(func() { errs[i] = l.Close() })
	}
	for _, l := range warm {
		wg.Go(func() { l.Close() }) // nothing to report: it held no probe
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *keeperServer) reply(r keeperReply) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return writeFrame(s.conn, appendReply(make([]byte, 4, 64), r), nil)
}

// writeFrame sends a message as one frame, with fds attached to its first
// byte. frame is the message's encoding after 4 bytes of room for the
// length.
func writeFrame(conn *net.UnixConn, frame []byte, fds []int) error {
	binary.LittleEndian.PutUint32(frame, uint32(len(frame)-4))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := conn.WriteMsgUnix(frame, oob, nil)
	if err != nil {
		return err
	}
	if n < len(frame) {
		_, err = conn.Write(frame[n:])
	}
	return err
}

// maxFrame bounds a frame: MaxSites offsets and cookies, with room.
const maxFrame = 1 << 30

// readFrame reads one request and returns the descriptors that came with
// it.
func readFrame(conn *net.UnixConn) (keeperRequest, []int, error) {
	var req keeperRequest
	body, fds, err := readRaw(conn)
	if err != nil {
		return req, nil, err
	}
	if req, err = decodeRequest(body); err != nil {
		closeFDs(fds)
		return req, nil, fmt.Errorf("decode keeper request: %w", err)
	}
	return req, fds, nil
}

func readRaw(conn *net.UnixConn) ([]byte, []int, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	var fds []int
	got := 0
	for got < len(hdr) {
		n, oobn, _, _, err := conn.ReadMsgUnix(hdr[got:], oob)
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr == nil {
				for _, m := range msgs {
					if rights, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, rights...)
					}
				}
			}
		}
		if err != nil {
			closeFDs(fds)
			if got > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if n == 0 {
			closeFDs(fds)
			if got > 0 {
				return nil, nil, io.ErrUnexpectedEOF
			}
			return nil, nil, io.EOF
		}
		got += n
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size > maxFrame {
		closeFDs(fds)
		return nil, nil, fmt.Errorf("keeper frame of %d bytes, more than %d", size, maxFrame)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		closeFDs(fds)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	return body, fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// keeper is the engine's end: it starts the keeper process and sends it
// requests.
type keeper struct {
	regMu sync.Mutex // register
	log   *slog.Logger
	conn  *net.UnixConn
	cmd   *exec.Cmd
	wmu   sync.Mutex // writes

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan keeperReply
	progs   map[*ebpf.Program]uint8 // registered with the keeper
	err     error                   // set when the connection broke
	gone    chan struct{}           // closed when the reply reader stopped
	exited  chan struct{}           // closed when the process was waited for

	// dropped is set once the keeper was left to close the links of a
	// process that is gone: stop then does not wait for the keeper.
	dropped atomic.Bool
}

// errNoKeeperHook reports a program that did not call RunKeeperIfRequested.
var errNoKeeperHook = errors.New("this program does not call probe.RunKeeperIfRequested first in main (or TestMain)")

// startKeeper starts a keeper process and waits for its greeting; classic
// says whether it makes classic uprobes or uprobe_multi links, which need
// different capabilities (keeperCaps).
func startKeeper(ctx context.Context, log *slog.Logger, classic bool) (_ *keeper, err error) {
	if !keeperHook.Load() {
		return nil, errNoKeeperHook
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
	cmd.Env = []string{keeperEnv + "=1"}
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
	err = startConfined(cmd, keeperCaps(classic))
	errWrite.Close()
	if err != nil {
		errRead.Close()
		return nil, fmt.Errorf("start %s as the probe keeper: %w", exe, err)
	}
	go func() {
		io.Copy(os.Stderr, errRead)
		errRead.Close()
	}()
	k := &keeper{
		log:     log,
		conn:    conn,
		cmd:     cmd,
		pending: map[uint64]chan keeperReply{},
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
	case <-time.After(keeperStartTimeout):
		err = fmt.Errorf("no greeting within %s", keeperStartTimeout)
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
func (k *keeper) readReplies(greeting chan<- error) {
	defer close(k.gone)
	greeted := false
	for {
		body, fds, err := readRaw(k.conn)
		closeFDs(fds)
		var r keeperReply
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
func (k *keeper) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil {
		k.err = err
	}
	for id, ch := range k.pending {
		ch <- keeperReply{ID: id, Err: toWire(k.err)}
		delete(k.pending, id)
	}
}

// call sends req and waits for its reply.
func (k *keeper) call(req keeperRequest, fds ...int) (keeperReply, error) {
	ch := make(chan keeperReply, 1)
	k.mu.Lock()
	if k.err != nil {
		err := k.err
		k.mu.Unlock()
		return keeperReply{}, err
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
		return keeperReply{}, fmt.Errorf("send to the probe keeper: %w", err)
	}
	r := <-ch
	if r.Err != nil && r.Errs == nil {
		return r, r.Err.err()
	}
	return r, nil
}

// register sends prog to the keeper once, under key.
func (k *keeper) register(prog *ebpf.Program, key uint8) error {
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
	if _, err := k.call(keeperRequest{Op: opProg, Prog: key}, prog.FD()); err != nil {
		return fmt.Errorf("hand the BPF program to the probe keeper: %w", err)
	}
	k.mu.Lock()
	k.progs[prog] = key
	k.mu.Unlock()
	return nil
}

// attach asks the keeper for the links of armings, in one message, and
// returns the result of each. The keeper opens the executable at path
// itself.
func (k *keeper) attach(_ *link.Executable, path string, prog *ebpf.Program, multi bool, armings []*arming) ([]linkResult, error) {
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
	req := keeperRequest{Op: opAttach}
	for _, a := range armings {
		offsets, cookies := a.offsetsCookies()
		req.Attach = append(req.Attach, keeperAttach{ID: a.id, Prog: key, Path: abs, PID: a.pid, Offsets: offsets, Cookies: cookies})
	}
	r, err := k.call(req)
	if err != nil {
		return nil, err
	}
	if len(r.Errs) != len(armings) {
		return nil, fmt.Errorf("the probe keeper answered %d attach results for %d groups", len(r.Errs), len(armings))
	}
	res := make([]linkResult, len(r.Errs))
	for i, e := range r.Errs {
		res[i] = linkResult{err: e.Err.err(), site: e.Site}
	}
	return res, nil
}

// close asks the keeper to close the links of armings and returns once
// they are closed.
func (k *keeper) close(ids ...uint32) error {
	_, err := k.call(keeperRequest{Op: opClose, Close: ids})
	return err
}

// drop asks the keeper to close the links of armings whose processes are
// gone, and returns without waiting for them to close.
func (k *keeper) drop(ids ...uint32) error {
	k.dropped.Store(true)
	_, err := k.call(keeperRequest{Op: opDrop, Close: ids})
	return err
}

// release closes the connection, which makes the keeper close every link
// it still holds and exit, and returns without waiting for that: the
// engine closed the links of running processes itself. The keeper's exit
// is logged.
func (k *keeper) release() {
	k.conn.Close()
	go func() {
		<-k.exited
		<-k.gone
		if st := k.cmd.ProcessState; st != nil && !st.Success() {
			k.log.Warn("the probe keeper exited after the engine closed", "pid", k.cmd.Process.Pid, "state", st.String())
		}
	}()
}

// stop closes the connection, which makes the keeper close every link it
// still holds and exit, and waits for it to exit; once links were dropped
// (their processes gone, their closing maybe still under way), it releases
// the keeper instead.
func (k *keeper) stop() error {
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
