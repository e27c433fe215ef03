// Command http measures what `reach attach` (one-shot, the default) costs
// an HTTP server whose handler calls a vulnerable function on every
// request: golang.org/x/text v0.3.5's language.Parse (GO-2021-0113), in
// testdata/server.
//
// It starts the server once, on 127.0.0.1, and loads it from this process
// with -clients concurrent keep-alive clients for -d per round, in rounds
// that alternate plain (nothing attached) and attached (`reach attach`
// running, its probes armed before the load starts; the handler's first
// call removes them). Each pair of neighbouring rounds (one of each kind)
// gives a ratio, which the machine's changing load affects less than the
// rounds far apart. It prints the median requests per second of each,
// and the server's CPU time per request (less sensitive than requests per
// second to other load on the machine), with their ratios, and checks each
// attached round's report says language.Parse was reached.
//
//	go run ./bench/http [-rounds R] [-d 2s] [-clients C] [-max-requests N] [-db DIR]
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
	rounds := flag.Int("rounds", 8, "rounds of each kind (plain and attached), alternating")
	d := flag.Duration("d", 2*time.Second, "load duration per round")
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
	st, err := harness.Prepare(ctx, "http", db)
	if err != nil {
		return err
	}
	defer st.Close()
	db, tmp, reach := st.DB, st.Tmp, st.Reach
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
	var rps, cpu [2][]float64        // [plain, attached]
	var rpsRatio, cpuRatio []float64 // attached / plain within each pair of rounds
	for round := range 2 * rounds {
		// Pairs alternate which kind goes first: P A A P P A ...
		kind := 0
		if (round%2 == 1) != (round/2%2 == 1) {
			kind = 1
		}
		var m measure
		if kind == 1 {
			m, err = attachedRound(ctx, reach, db, srv.pid(), l, filepath.Join(tmp, "report.json"))
		} else {
			m, err = l.measure(ctx, srv.pid())
		}
		if err != nil {
			return err
		}
		rps[kind] = append(rps[kind], m.rps())
		cpu[kind] = append(cpu[kind], m.cpuPerRequest())
		if round%2 == 1 {
			k := round / 2
			rpsRatio = append(rpsRatio, rps[1][k]/rps[0][k])
			cpuRatio = append(cpuRatio, cpu[1][k]/cpu[0][k])
		}
		fmt.Printf("  round %2d  %-9s %10.0f requests/s %8.1f µs server CPU per request\n", round+1, []string{"plain", "attached"}[kind], m.rps(), m.cpuPerRequest())
	}
	p, a := harness.Median(rps[0]), harness.Median(rps[1])
	pc, ac := harness.Median(cpu[0]), harness.Median(cpu[1])
	fmt.Printf("\n  %-32s %10.0f requests/s %8.1f µs server CPU per request\n", "plain (median)", p, pc)
	fmt.Printf("  %-32s %10.0f requests/s %8.1f µs server CPU per request\n", "reach attach, one-shot (median)", a, ac)
	r := harness.Median(rpsRatio)
	fmt.Printf("  requests/s, attached / plain: %.3f as the median of each pair's ratio (goal >= 0.99: %s); %.3f as the ratio of the medians\n",
		r, harness.Goal(r >= 0.99), a/p)
	fmt.Printf("  server CPU per request, attached / plain: %.3f as the median of each pair's ratio; %.3f as the ratio of the medians\n", harness.Median(cpuRatio), ac/pc)
	return nil
}

// measure is one round's load.
type measure struct {
	requests int64
	took     time.Duration
	cpu      time.Duration // the server's CPU time (user and system) meanwhile
}

func (m measure) rps() float64 { return float64(m.requests) / m.took.Seconds() }

func (m measure) cpuPerRequest() float64 {
	return float64(m.cpu) / float64(time.Microsecond) / float64(m.requests)
}

// measure loads the server for l.d and reads its CPU time around the load.
func (l *loader) measure(ctx context.Context, pid int) (measure, error) {
	cpu0, err := harness.CPUTime(pid)
	if err != nil {
		return measure{}, err
	}
	n, took, err := l.load(ctx, l.d)
	if err != nil {
		return measure{}, err
	}
	cpu1, err := harness.CPUTime(pid)
	if err != nil {
		return measure{}, err
	}
	if n == 0 {
		return measure{}, errors.New("no request completed")
	}
	return measure{requests: n, took: took, cpu: cpu1 - cpu0}, nil
}

// attachedRound runs reach attach on the server, loads it once the probes
// are armed, stops reach and checks its report.
func attachedRound(ctx context.Context, reach, db string, pid int, l *loader, rep string) (measure, error) {
	os.Remove(rep)
	cmd := exec.CommandContext(ctx, reach, "attach", "-db", db, "-format", "json", "-o", rep, strconv.Itoa(pid))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return measure{}, err
	}
	if err := cmd.Start(); err != nil {
		return measure{}, fmt.Errorf("start reach attach: %w", err)
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
	fail := func(err error) (measure, error) {
		cmd.Process.Kill()
		cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return measure{}, fmt.Errorf("reach attach: %w\n%s", err, strings.Join(said, "\n"))
	}
	select {
	case <-observed:
	case <-drained:
		return fail(errors.New("exited before observing"))
	case <-time.After(time.Minute):
		return fail(errors.New("no \"observing\" message after a minute"))
	}
	m, err := l.measure(ctx, pid)
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
		return measure{}, fmt.Errorf("reach attach: %w\n%s", err, strings.Join(said, "\n"))
	}
	r, err := harness.ReadReport(rep)
	if err != nil {
		return measure{}, err
	}
	if s := harness.Symbol(r, osvID, pkg, symbol); s == nil || s.Status != "reached" {
		return measure{}, fmt.Errorf("reach attach: the report does not say %s.%s (%s) was reached: the round measured nothing", pkg, symbol, osvID)
	}
	return m, nil
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
