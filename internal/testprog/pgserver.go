package testprog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGServer is a private PostgreSQL cluster, for tests of a database that
// goes away and comes back: see PostgresServer.
type PGServer struct {
	tb      testing.TB
	bin     string // directory of initdb and postgres
	dir     string // owned by the server's user: data/ and the log
	port    int
	cred    *credential
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	waitErr error         // cmd's exit, once exited is closed
}

// PostgresServer initialises a cluster of its own in a temporary directory
// and starts it on a free loopback port, with trust authentication for the
// superuser postgres; it stops when the test ends. As root it runs as the
// operating system's user postgres (PostgreSQL refuses to run as root). It
// takes the binaries of the newest /usr/lib/postgresql/*/bin (Debian's
// package postgresql), or initdb and postgres from $PATH, and skips the
// test when there are none, except under CI=true, where it fails it.
//
// Stop and Start call tb.Fatal on failure, so call them from the test's
// goroutine.
func PostgresServer(tb testing.TB) *PGServer {
	tb.Helper()
	bin, err := pgBin()
	if err != nil {
		Skip(tb, err.Error())
	}
	s := &PGServer{tb: tb, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Skip(tb, "PostgreSQL refuses to run as root and there is no user postgres to run it as: install Debian's package postgresql")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &credential{uid: uid, gid: gid}
		s.dir = SharedDir(tb, uid, 0o700)
	} else {
		s.dir = tb.TempDir()
	}
	if s.port, err = freePort(); err != nil {
		tb.Fatal(err)
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "--pgdata", filepath.Join(s.dir, "data"),
		"--username", "postgres", "--auth", "trust", "--encoding", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", initdb, err, out)
	}
	tb.Cleanup(func() {
		if s.cmd != nil {
			if err := s.stop(); err != nil {
				tb.Error(err)
			}
		}
	})
	s.Start()
	return s
}

// DSN returns the URL to connect to the cluster's database postgres as its
// superuser; it stays the same across Stop and Start.
func (s *PGServer) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the stopped cluster on its port and waits until it accepts
// connections.
func (s *PGServer) Start() {
	s.tb.Helper()
	if s.cmd != nil {
		s.tb.Fatal("PGServer.Start: the server is running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer logf.Close()
	// Durability is not under test: fsync off makes a start, a stop and
	// each commit fast.
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start %s: %v", cmd, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(pgTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.DSN())
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return
		}
		select {
		case <-s.exited:
			s.cmd = nil
			s.tb.Fatalf("postgres exited at start (%v):\n%s", s.waitErr, s.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("postgres accepts no connection after %v: %v\n%s", pgTimeout, err, s.log())
		}
	}
}

// Stop shuts the cluster down (a fast shutdown: open connections are
// ended) and waits until it has exited and its port is closed.
func (s *PGServer) Stop() {
	s.tb.Helper()
	if s.cmd == nil {
		s.tb.Fatal("PGServer.Stop: the server is not running")
	}
	if err := s.stop(); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *PGServer) stop() error {
	defer func() { s.cmd = nil }()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop postgres: %w", err)
	}
	select {
	case <-s.exited:
	case <-time.After(pgTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("postgres did not stop within %v of SIGINT; killed:\n%s", pgTimeout, s.log())
	}
	return nil
}

// log returns the end of the server's log, for an error message.
func (s *PGServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// command returns a command that runs as the server's user.
func (s *PGServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	// The locale of the test's environment may not exist here.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		runAs(cmd, *s.cred)
	}
	return cmd
}

type credential struct{ uid, gid int }

// pgBin returns the directory of PostgreSQL's server binaries.
func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first: 9.6 < 10 < 15.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		return cmp.Compare(vb, va)
	})
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin or $PATH: install Debian's package postgresql")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
