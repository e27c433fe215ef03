package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverLog passes the servers' logs (-v) on to standard error.
var serverLog bool

// server is one `reach server` process on loopback.
type server struct {
	name  string   // "SQLite" or "PostgreSQL"
	reach string   // the reach binary
	data  string   // its -data directory
	store string   // its -store: "" for SQLite in data; a URL without password
	env   []string // PGPASSWORD for store, kept off command lines
	base  string   // http://127.0.0.1:PORT
	admin string   // the admin token, from DATA/admin-token
	cmd   *exec.Cmd
	out   *tail
	done  chan struct{}
	// dash is a client logged in to the dashboard (session cookie).
	dash *http.Client
}

// storeArgs are the flags that choose the server's store.
func (s *server) storeArgs() []string {
	args := []string{"-data", s.data}
	if s.store != "" {
		args = append(args, "-store", s.store)
	}
	return args
}

// database returns the name of the server's PostgreSQL database, or "".
func (s *server) database() string {
	if s.store == "" {
		return ""
	}
	u, err := url.Parse(s.store)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// withBackends says what a CPU figure of the server includes.
func (s *server) withBackends() string {
	if s.store == "" {
		return ""
	}
	return " and its PostgreSQL backends"
}

// startServer starts `reach server` on a free loopback port with its data
// in data (and its store at store, a PostgreSQL URL, unless ""), waits
// until it answers, and reads its admin token. A password in store goes to
// the server in PGPASSWORD, not on its command line.
func startServer(ctx context.Context, reach, name, data, store string) (*server, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, reach: reach, data: data, base: "http://" + port, out: &tail{}, done: make(chan struct{})}
	if store != "" {
		u, err := url.Parse(store)
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL DSN: %w", err)
		}
		if pw, ok := u.User.Password(); ok {
			s.env = []string{"PGPASSWORD=" + pw}
			u.User = url.User(u.User.Username())
		}
		s.store = u.String()
	}
	args := append([]string{"server", "-v", "-listen", port}, s.storeArgs()...)
	s.cmd = exec.Command(reach, args...)
	s.cmd.Env = append(os.Environ(), s.env...)
	dieWithParent(s.cmd)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if serverLog {
		s.cmd.Stdout, s.cmd.Stderr = io.MultiWriter(s.out, os.Stderr), io.MultiWriter(s.out, os.Stderr)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reach server (%s): %w", name, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("reach server (%s): admin token: %w", name, err)
	}
	s.admin = strings.TrimSpace(string(tok))
	return s, nil
}

// freePort returns a loopback address nothing listens on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady waits until the server answers its login page, or exits.
func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("reach server (%s) exited at start: %v\n%s", s.name, s.cmd.ProcessState, s.out)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		r, err := hc.Get(s.base + "/login")
		if err == nil {
			r.Body.Close()
			if _, err := os.Stat(filepath.Join(s.data, "admin-token")); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("reach server (%s) does not answer on %s after a minute\n%s", s.name, s.base, s.out)
}

// enrolToken makes an enrolment token with `reach server enrol-token`.
func (s *server) enrolToken(ctx context.Context) (string, error) {
	args := append([]string{"server", "enrol-token", "-name", "bench"}, s.storeArgs()...)
	cmd := exec.CommandContext(ctx, s.reach, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("reach server enrol-token (%s): %w\n%s", s.name, err, stderr.Bytes())
	}
	tok := strings.TrimSpace(string(out))
	if tok == "" || strings.ContainsAny(tok, " \n") {
		return "", fmt.Errorf("reach server enrol-token (%s): no token on its standard output: %q", s.name, out)
	}
	return tok, nil
}

// login logs a client in to the dashboard with the admin token, keeping
// the session cookie.
func (s *server) login(ctx context.Context) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: hc.Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/login", strings.NewReader(url.Values{"token": {s.admin}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("log in to the dashboard (%s): %w", s.name, err)
	}
	if r.StatusCode == http.StatusTooManyRequests {
		r.Body.Close()
		time.Sleep(time.Second) // enrolment took this address's tokens
		return s.login(ctx)
	}
	r.Body.Close()
	u, _ := url.Parse(s.base)
	if len(jar.Cookies(u)) == 0 {
		return fmt.Errorf("log in to the dashboard (%s): %s and no session cookie", s.name, r.Status)
	}
	s.dash = c
	return nil
}

// stop ends the server with SIGTERM (SIGKILL after 10 s).
func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// alive returns an error when the server exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("reach server (%s) exited: %v\n%s", s.name, s.cmd.ProcessState, s.out)
	default:
		return nil
	}
}

// tail keeps the last 16 KiB written to it: the server's log for errors.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = t.buf[len(t.buf)-16<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
