//go:build linux

package keeper

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// RunIfRequested takes the keeper role when Env asks for it,
// and never returns then.
func RunIfRequested() {
	Hook.Store(true)
	if os.Getenv(Env) == "" {
		return
	}
	os.Unsetenv(Env)
	closeInherited()
	code := 0
	if err := serve(os.NewFile(socketFD, "keeper socket")); err != nil {
		fmt.Fprintf(os.Stderr, "reach probe keeper %d: %v\n", os.Getpid(), err)
		code = 1
	}
	os.Exit(code)
}

// server is the keeper's state.
type server struct {
	conn  *net.UnixConn
	wmu   sync.Mutex
	mu    sync.Mutex
	progs map[uint8]*ebpf.Program
	links map[uint32][]link.Link
	warm  []link.Link // warm links not closed yet
	work  sync.WaitGroup
}

func serve(f *os.File) error {
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
		return fmt.Errorf("descriptor %d is a %T, not a unix socket", socketFD, c)
	}
	s := &server{conn: conn, progs: map[uint8]*ebpf.Program{}, links: map[uint32][]link.Link{}}
	if err := s.reply(response{}); err != nil {
		return fmt.Errorf("greet the engine: %w", err)
	}
	// The keeper holds every link's descriptor.
	s.work.Go(func() { GrowFDTable(FDTableSize) })
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

func (s *server) handle(req request, fds []int) {
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
		s.reply(response{ID: req.ID, Err: toWire(err)})
	case opAttach:
		s.work.Go(func() {
			r := response{ID: req.ID, Errs: make([]attachResult, len(req.Attach))}
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
				if l, err = WarmLink(prog, req.Attach[0].Path); err == nil {
					// Closed with the next links closed, whose grace
					// periods it then shares.
					s.mu.Lock()
					s.warm = append(s.warm, l)
					s.mu.Unlock()
				}
			}
			s.reply(response{ID: req.ID, Err: toWire(err)})
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
		s.reply(response{ID: req.ID})
		for _, l := range todo {
			s.work.Go(func() { l.Close() })
		}
	case opClose:
		s.work.Go(func() {
			s.reply(response{ID: req.ID, Err: toWire(s.close(req.Close))})
		})
	default:
		s.reply(response{ID: req.ID, Err: toWire(fmt.Errorf("unknown keeper operation %d", req.Op))})
	}
}

// attach creates the links of a and keeps them. It returns the index of the
// failing site of a classic attach, else -1.
func (s *server) attach(exes map[string]*link.Executable, a attachRequest) (int, error) {
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
	links, site, err := CreateLinks(ex, prog, a.Prog == progMulti, a.PID, a.Offsets, a.Cookies)
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
func (s *server) close(ids []uint32) error {
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

func (s *server) reply(r response) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return writeFrame(s.conn, appendReply(make([]byte, 4, 64), r), nil)
}
