// Command http measures what `reach attach` (one-shot, the default) costs
// an HTTP server whose handler calls a vulnerable function on every
// request: golang.org/x/text v0.3.5's language.Parse (GO-2021-0113), in
// testdata/server.
//
// It starts the server once, on 127.0.0.1, and loads it from this process
// with -clients concurrent keep-alive clients for -d per round, in rounds
// that alternate plain (nothing attached) and attached (`reach attach`
// running, its probes armed before the load starts; the handler's first
// call removes them). It prints the median requests per second of each and
// their ratio, and checks each attached round's report says language.Parse
// was reached.
//
//	go run ./bench/http [-rounds R] [-d 3s] [-clients C] [-max-requests N] [-db DIR]
//
// It needs root and the real vulnerability database (-db, default
// $REACH_TEST_VULNDB, else ../shared/vulndb).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
)

const (
	osvID  = "GO-2021-0113"
	pkg    = "golang.org/x/text/language"
	symbol = "Parse"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/http: ")
	rounds := flag.Int("rounds", 5, "rounds of each kind (plain and attached), alternating")
	d := flag.Duration("d", 3*time.Second, "load duration per round")
	clients := flag.Int("clients", 4, "concurrent keep-alive clients")
	maxReq := flag.Int64("max-requests", 2_000_000, "stop a round's load after this many requests")
	db := flag.String("db", harness.DefaultDB(), "vulnerability database directory (v1 layout)")
	flag.Parse()
	if *rounds <= 0 || *d <= 0 || *clients <= 0 || *maxReq <= 0 {
		log.Fatal("-rounds, -d, -clients and -max-requests must be positive")
	}
	l := &loader{clients: *clients, d: *d, max: *maxReq}
	if err := run(context.Background(), *rounds, l, *db); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, rounds int, l *loader, db string) error {
	if err := harness.CheckRepoRoot(); err != nil {
		return err
	}
	if err := harness.CheckRoot(); err != nil {
		return err
	}
	db, err := harness.CheckDB(db)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "reach-bench-http-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	reach, err := harness.BuildReach(ctx, tmp)
	if err != nil {
		return err
	}
	src := filepath.Join(tmp, "server")
	if err := os.CopyFS(src, os.DirFS(filepath.Join("bench", "http", "testdata", "server"))); err != nil {
		return err
	}
	exe := filepath.Join(tmp, "server-bin")
	if err := harness.Go(ctx, src, []string{"GOFLAGS=-mod=mod", "CGO_ENABLED=0"}, "build", "-o", exe, "."); err != nil {
		return fmt.Errorf("build the server: %w", err)
	}
	srv, err := startServer(exe)
	if err != nil {
		return err
	}
	defer srv.stop()
	l.url = "http://" + srv.addr + "/?lang=zh-Hant-TW"
	l.client = &http.Client{Transport: &http.Transport{MaxIdleConns: l.clients, MaxIdleConnsPerHost: l.clients, DisableCompression: true}}

	fmt.Printf("GET %s: handler calls %s.%s (%s)\n", l.url, pkg, symbol, osvID)
	fmt.Printf("%d keep-alive clients, %s per round, %d rounds each of plain and attached, alternating; medians\n\n", l.clients, l.d, rounds)
	if _, _, err := l.load(ctx, time.Second); err != nil { // warm-up
		return err
	}
	var plain, attached []float64
	for round := range 2 * rounds {
		// Pairs alternate which kind goes first: P A A P P A ...
		isAttached := (round%2 == 1) != (round/2%2 == 1)
		var rps float64
		if isAttached {
			rps, err = attachedRound(ctx, reach, db, srv.pid(), l, filepath.Join(tmp, "report.json"))
			attached = append(attached, rps)
		} else {
			var n int64
			var took time.Duration
			n, took, err = l.load(ctx, l.d)
			rps = float64(n) / took.Seconds()
			plain = append(plain, rps)
		}
		if err != nil {
			return err
		}
		kind := "plain"
		if isAttached {
			kind = "attached"
		}
		fmt.Printf("  round %2d  %-9s %10.0f requests/s\n", round+1, kind, rps)
	}
	p, a := harness.Median(plain), harness.Median(attached)
	fmt.Printf("\n  %-32s %10.0f requests/s\n", "plain (median)", p)
	fmt.Printf("  %-32s %10.0f requests/s\n", "reach attach, one-shot (median)", a)
	fmt.Printf("  attached / plain: %.3f (goal >= 0.99: %s)\n", a/p, harness.Goal(a/p >= 0.99))
	return nil
}

// attachedRound runs reach attach on the server, loads it once the probes
// are armed, stops reach and checks its report.
func attachedRound(ctx context.Context, reach, db string, pid int, l *loader, rep string) (float64, error) {
	os.Remove(rep)
	cmd := exec.CommandContext(ctx, reach, "attach", "-db", db, "-format", "json", "-o", rep, strconv.Itoa(pid))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start reach attach: %w", err)
	}
	var (
		said     []string
		mu       sync.Mutex
		observed = make(chan struct{})
		once     sync.Once
		drained  = make(chan struct{})
	)
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			said = append(said, sc.Text())
			mu.Unlock()
			if strings.Contains(sc.Text(), "observing") {
				once.Do(func() { close(observed) })
			}
		}
	}()
	fail := func(err error) (float64, error) {
		cmd.Process.Kill()
		cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return 0, fmt.Errorf("reach attach: %w\n%s", err, strings.Join(said, "\n"))
	}
	select {
	case <-observed:
	case <-drained:
		return fail(errors.New("exited before observing"))
	case <-time.After(time.Minute):
		return fail(errors.New("no \"observing\" message after a minute"))
	}
	n, took, err := l.load(ctx, l.d)
	if err != nil {
		return fail(err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return fail(err)
	}
	<-drained
	err = cmd.Wait()
	// -fail-on reached, the default of attach, exits 3 on a reached finding.
	if ee := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return 0, fmt.Errorf("reach attach: %w\n%s", err, strings.Join(said, "\n"))
	}
	r, err := harness.ReadReport(rep)
	if err != nil {
		return 0, err
	}
	if s := harness.Symbol(r, osvID, pkg, symbol); s == nil || s.Status != "reached" {
		return 0, fmt.Errorf("reach attach: the report does not say %s.%s (%s) was reached: the round measured nothing", pkg, symbol, osvID)
	}
	return float64(n) / took.Seconds(), nil
}

// loader loads the server with concurrent keep-alive clients.
type loader struct {
	url     string
	client  *http.Client
	clients int
	d       time.Duration
	max     int64
}

// load sends requests from l.clients goroutines for d, or until l.max
// requests, and returns how many completed and how long it took.
func (l *loader) load(ctx context.Context, d time.Duration) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	deadline := start.Add(d)
	for range l.clients {
		wg.Go(func() {
			for time.Now().Before(deadline) && n.Load() < l.max {
				if err := l.get(ctx); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), time.Since(start), firstErr
}

func (l *loader) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "zh-Hant-TW" {
		return fmt.Errorf("GET %s: %s %q", l.url, resp.Status, body)
	}
	return nil
}

// server is the running fixture server.
type server struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	addr string
}

func startServer(exe string) (*server, error) {
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
		return nil, fmt.Errorf("start the server: %w", err)
	}
	s := &server{cmd: cmd, in: in}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		s.stop()
		return nil, fmt.Errorf("the server did not start: %v", sc.Err())
	}
	addr, ok := strings.CutPrefix(sc.Text(), "listening ")
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
		s.stop()
		return nil, fmt.Errorf("the server said %q, want \"listening 127.0.0.1:PORT\"", sc.Text())
	}
	s.addr = addr
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
