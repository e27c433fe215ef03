package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

// server is a running httpserve fixture.
type server struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(t *testing.T, bin string) *server {
	t.Helper()
	cmd := exec.Command(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	l := readLine(t, bufio.NewReader(stdout), 10*time.Second)
	addr, ok := strings.CutPrefix(l, "listening ")
	if !ok {
		t.Fatalf("server said %q, want listening ADDR", l)
	}
	return &server{cmd: cmd, addr: addr}
}

// get requests path with an Accept-Language header and checks the answer.
func (s *server) get(t *testing.T, path, lang, want string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+s.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", lang)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s: %s %q, want 200 %q", path, resp.Status, body, want)
	}
}

// attached is a reach attach process in progress.
type attached struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

// startAttach starts reach with args and waits until it observes
// processes (or exits).
func startAttach(t *testing.T, args ...string) *attached {
	t.Helper()
	a := &attached{cmd: exec.Command(reachBin(t), args...), done: make(chan struct{})}
	pipe, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		a.wait(t)
	})
	ready := make(chan struct{})
	go func() {
		defer close(a.done)
		sc := bufio.NewScanner(pipe)
		seen := false
		for sc.Scan() {
			a.mu.Lock()
			a.stderr.WriteString(sc.Text() + "\n")
			a.mu.Unlock()
			if !seen && strings.HasPrefix(sc.Text(), "reach: observing ") {
				seen = true
				close(ready)
			}
		}
		if !seen {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("reach attach not observing after 30s:\n%s", a.errText())
	}
	return a
}

func (a *attached) errText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stderr.String()
}

// wait waits for reach to exit and returns its exit code.
func (a *attached) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		a.cmd.Process.Kill()
		t.Errorf("reach attach did not exit within 30s")
	}
	a.cmd.Wait()
	return a.cmd.ProcessState.ExitCode()
}

// symbolSites returns the file offsets of the probe sites of symbol
// pkg.name of entry id in bin, as reach computes them.
func symbolSites(t *testing.T, db, bin, id, pkg, name string) []uint64 {
	t.Helper()
	ctx := context.Background()
	c, err := vulndb.New(db, vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.ByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := binfo.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := match.Match(ctx, b, []*osv.Entry{e}, &match.Options{MainPackage: b.MainPackage})
	if err != nil {
		t.Fatal(err)
	}
	var offs []uint64
	for _, f := range res.Findings {
		for _, s := range f.Symbols {
			if s.Package != pkg || s.Name != name {
				continue
			}
			for _, tg := range s.Funcs {
				for _, site := range tg.Sites {
					offs = append(offs, site.Offset)
				}
			}
		}
	}
	if len(offs) == 0 {
		t.Fatalf("%s: no probe site for %s.%s in %s", id, pkg, name, bin)
	}
	return offs
}

// codeDiffs compares the executable mappings of bin in process pid with
// the file and returns the bytes that differ, by file offset: the probes
// the kernel put into the process.
func codeDiffs(t *testing.T, pid int, bin string) map[uint64]byte {
	t.Helper()
	file, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	diffs := map[uint64]byte{}
	mapped := 0
	for _, l := range strings.Split(string(maps), "\n") {
		var lo, hi, off uint64
		var perms, dev, path string
		var inode int
		if n, _ := fmt.Sscanf(l, "%x-%x %s %x %s %d %s", &lo, &hi, &perms, &off, &dev, &inode, &path); n < 7 || path != bin || !strings.Contains(perms, "x") {
			continue
		}
		size := min(hi-lo, uint64(len(file))-off)
		got := make([]byte, size)
		if _, err := mem.ReadAt(got, int64(lo)); err != nil {
			t.Fatalf("read code of process %d at %#x: %v", pid, lo, err)
		}
		for i, b := range got {
			if b != file[off+uint64(i)] {
				diffs[off+uint64(i)] = b
			}
		}
		mapped++
	}
	if mapped == 0 {
		t.Fatalf("no executable mapping of %s in process %d", bin, pid)
	}
	return diffs
}

// TestAttachHTTPServer attaches to a serving HTTP server in count mode
// with a stream of hits: calls before the attach are not counted, calls
// after are, with the handler as callsite; hits stream as they happen;
// and once reach is gone the server serves on with no probe left in its
// code.
func TestAttachHTTPServer(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "httpserve")
	src := filepath.Join(dir, "main.go")
	bin := testprog.Build(t, dir, testprog.Plain)
	sites := symbolSites(t, db, bin, textOSV, textPkg, "Parse")
	srv := startServer(t, bin)
	pid := srv.cmd.Process.Pid

	// Before reach: one call of each handler, and two of Parse.
	srv.get(t, "/before", "fr-CH, fr;q=0.9", "[fr-CH fr]\n")
	srv.get(t, "/parse", "en-US", "en-US\n")
	srv.get(t, "/parse", "de", "de\n")
	if d := codeDiffs(t, pid, bin); len(d) != 0 {
		t.Fatalf("code differs from the file before reach attached: %d bytes", len(d))
	}

	tmp := t.TempDir()
	out, stream := filepath.Join(tmp, "report.json"), filepath.Join(tmp, "hits.ndjson")
	t0 := time.Now()
	a := startAttach(t, "attach", "-db", db, "-count", "-format", "json", "-o", out, "-stream", stream, itoa(uint64(pid)))
	diffs := codeDiffs(t, pid, bin)
	for _, off := range sites {
		if b, ok := diffs[off]; !ok || b != 0xcc {
			t.Errorf("Parse site at file offset %#x not armed while attached: byte %#x (differs: %v)", off, b, ok)
		}
	}
	for off, b := range diffs {
		if b != 0xcc {
			t.Errorf("code byte at file offset %#x changed to %#x: probes only write int3", off, b)
		}
	}

	// After: three calls, each counted; the first is streamed at once.
	srv.get(t, "/parse", "en-GB", "en-GB\n")
	if ev := waitEvent(t, stream, "Parse", a); ev.PID != pid {
		t.Errorf("streamed hit of process %d, want %d", ev.PID, pid)
	}
	srv.get(t, "/parse", "pt-BR", "pt-BR\n")
	srv.get(t, "/parse", "ja", "ja\n")
	t.Logf("attached and 3 requests in %s", time.Since(t0))
	a.cmd.Process.Signal(syscall.SIGINT)
	t0 = time.Now()
	if code := a.wait(t); code != ExitFound {
		t.Fatalf("reach attach exit %d, want %d (a finding reached, -fail-on reached by default)\n%s", code, ExitFound, a.errText())
	}

	t.Logf("reach exited %s after SIGINT", time.Since(t0))
	// The server serves on, with its code as the file has it.
	srv.get(t, "/parse", "it", "it\n")
	if d := codeDiffs(t, pid, bin); len(d) != 0 {
		t.Errorf("%d code bytes still differ from the file after reach exited: probes left behind", len(d))
	}

	r := readReport(t, out)
	if r.Mode != "attach" {
		t.Errorf("mode %q, want attach", r.Mode)
	}
	b := observedBinary(t, r, bin)
	if len(b.PIDs) != 1 || b.PIDs[0] != pid {
		t.Errorf("pids %v, want [%d]", b.PIDs, pid)
	}
	_, parse := observedSymbol(t, b, textOSV, textPkg, "Parse")
	wantReached(t, parse, "main.handleParse", src, sourceLine(t, src, "language.Parse("), 3)
	if parse.FirstSeen.Before(r.Started) {
		t.Errorf("Parse first seen %s, before observation began at %s", parse.FirstSeen, r.Started)
	}
	for _, id := range []string{textOSV, "GO-2022-1059"} {
		f, before := observedSymbol(t, b, id, textPkg, "ParseAcceptLanguage")
		if before.Status != report.Linked || before.Hits != 0 || len(before.Callsites) != 0 {
			t.Errorf("%s: ParseAcceptLanguage, called only before the attach: status %s, %d hits, callsites %+v; want linked, none", id, before.Status, before.Hits, before.Callsites)
		}
		if id != textOSV && f.Status != report.Linked {
			t.Errorf("%s: status %s, want linked", id, f.Status)
		}
	}
	if !notesMention(r, fmt.Sprintf("process %d", pid), "calls before then are not reported") {
		t.Errorf("notes do not say when observation of process %d began: %q", pid, r.Notes)
	}
	checkStream(t, stream, pid)
}

// waitEvent waits until the stream holds a hit of symbol, while reach
// still runs.
func waitEvent(t *testing.T, stream, symbol string, a *attached) observe.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range readEvents(t, stream) {
			if ev.Symbol == symbol {
				return ev
			}
		}
		select {
		case <-a.done:
			t.Fatalf("reach exited before streaming a hit of %s:\n%s", symbol, a.errText())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no hit of %s streamed within 10s", symbol)
	return observe.Event{}
}

func readEvents(t *testing.T, stream string) []observe.Event {
	t.Helper()
	b, err := os.ReadFile(stream)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var evs []observe.Event
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasSuffix(l, "\n") {
			break // a line still being written
		}
		var ev observe.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("stream line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// checkStream checks that every streamed hit is complete, and that Parse
// was streamed once: its first hit (one caller, so no other callsite).
func checkStream(t *testing.T, stream string, pid int) {
	t.Helper()
	evs := readEvents(t, stream)
	parse := 0
	for _, ev := range evs {
		if ev.OSV == "" || ev.Package == "" || ev.Symbol == "" || ev.PID != pid || ev.Callsite == nil || ev.Time.IsZero() {
			js, _ := json.Marshal(ev)
			t.Errorf("incomplete streamed hit: %s", js)
		}
		if ev.OSV == textOSV && ev.Package == textPkg && ev.Symbol == "Parse" {
			parse++
			if ev.Kind != "first" || ev.Callsite == nil || ev.Callsite.Function != "main.handleParse" {
				js, _ := json.Marshal(ev)
				t.Errorf("streamed Parse hit %s, want kind first from main.handleParse", js)
			}
		}
	}
	if parse != 1 {
		js, _ := json.MarshalIndent(evs, "\t", "  ")
		t.Errorf("%d streamed hits of Parse, want 1 (the first; later calls come from the same callsite):\n\t%s", parse, js)
	}
}

// TestAttachErrors attaches to processes that cannot be observed: alone,
// reach says why, naming each, and exits 1; beside one that can be, it
// observes that one and notes the other in the report.
func TestAttachErrors(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	gonePID := gone.Process.Pid
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleep.Process.Kill()
		sleep.Wait()
	})
	sleepPID := sleep.Process.Pid

	for _, tc := range []struct {
		name string
		pid  int
		want string
	}{
		{"nonexistent", gonePID, fmt.Sprintf("process %d: ", gonePID)},
		{"not Go", sleepPID, fmt.Sprintf("process %d (%s): ", sleepPID, mustLookPath(t, "sleep"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			res := runReach(t, "attach", "-db", db, "-format", "json", "-o", out, itoa(uint64(tc.pid)))
			if res.code != 1 {
				t.Errorf("exit %d, want 1", res.code)
			}
			if !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "no process could be observed") {
				t.Errorf("standard error does not say %q and that no process could be observed:\n%s", tc.want, res.stderr)
			}
			if twice := fmt.Sprintf("process %d: process %d", tc.pid, tc.pid); strings.Contains(res.stderr, twice) {
				t.Errorf("standard error names the process twice (%q):\n%s", twice, res.stderr)
			}
			if tc.name == "not Go" && !strings.Contains(res.stderr, "not a Go binary") {
				t.Errorf("standard error does not say sleep is not a Go program:\n%s", res.stderr)
			}
			r := readReport(t, out)
			if len(r.Binaries) != 0 || !notesMention(r, tc.want) {
				t.Errorf("report: binaries %d, notes %q; want none, and a note on process %d", len(r.Binaries), r.Notes, tc.pid)
			}
		})
	}

	t.Run("mixed", func(t *testing.T) {
		testAttachExit(t, db, []int{gonePID}, true)
	})
	// A process that exited but that its parent has not reaped yet (a
	// zombie) runs no more code: reach stops when it exits all the same.
	t.Run("zombie", func(t *testing.T) {
		testAttachExit(t, db, nil, false)
	})
}

// testAttachExit attaches to a lifecycle process waiting to call
// language.Parse, and to the processes of others, which cannot be
// observed; lets it call Parse and exit (and waits for it when reap is
// set); and checks that reach then stops by itself and reports the call
// and the others.
func testAttachExit(t *testing.T, db string, others []int, reap bool) {
	dir := testprog.Dir(t, "lifecycle")
	src := filepath.Join(dir, "main.go")
	bin := testprog.Build(t, dir, testprog.Plain)
	prog := exec.Command(bin, "wait")
	in, stdout := testprog.StartPiped(t, prog)
	defer func() {
		prog.Process.Kill()
		if !reap {
			prog.Wait()
		}
	}()
	lines := bufio.NewReader(stdout)
	if l := readLine(t, lines, 10*time.Second); l != "ready" {
		t.Fatalf("program said %q, want ready", l)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	args := []string{"attach", "-db", db, "-format", "json", "-o", out, itoa(uint64(prog.Process.Pid))}
	for _, pid := range others {
		args = append(args, itoa(uint64(pid)))
	}
	a := startAttach(t, args...)
	if !strings.Contains(a.errText(), "observing 1 process") {
		t.Fatalf("reach does not observe the good process:\n%s", a.errText())
	}
	fmt.Fprintln(in, "go")
	if l := readLine(t, lines, 10*time.Second); l != "en-US" {
		t.Errorf("program said %q, want en-US", l)
	}
	if reap {
		if err := prog.Wait(); err != nil {
			t.Errorf("program: %v", err)
		}
	}
	if code := a.wait(t); code != ExitFound {
		t.Errorf("exit %d, want %d: Parse reached\n%s", code, ExitFound, a.errText())
	}
	r := readReport(t, out)
	for _, pid := range others {
		want := fmt.Sprintf("process %d: ", pid)
		if !strings.Contains(a.errText(), want) {
			t.Errorf("standard error does not name process %d:\n%s", pid, a.errText())
		}
		if !notesMention(r, want) {
			t.Errorf("notes do not mention process %d: %q", pid, r.Notes)
		}
	}
	_, sym := observedSymbol(t, observedBinary(t, r, bin), textOSV, textPkg, "Parse")
	wantReached(t, sym, "main.parse", src, sourceLine(t, src, "language.Parse("), 0)
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAttachFor attaches with -for to a process that calls nothing
// vulnerable meanwhile: reach stops on time, exits 0, and reports
// language.Parse linked, not reached; the process runs on.
func TestAttachFor(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "lifecycle"), testprog.Plain)
	prog := exec.Command(bin, "wait")
	in, stdout := testprog.StartPiped(t, prog)
	defer func() {
		prog.Process.Kill()
		prog.Wait()
	}()
	lines := bufio.NewReader(stdout)
	if l := readLine(t, lines, 10*time.Second); l != "ready" {
		t.Fatalf("program said %q, want ready", l)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	start := time.Now()
	res := runReach(t, "attach", "-db", db, "-for", "500ms", "-format", "json", "-o", out, itoa(uint64(prog.Process.Pid)))
	took := time.Since(start)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0: nothing reached\n%s", res.code, res.stderr)
	}
	if took < 500*time.Millisecond || took > 20*time.Second {
		t.Errorf("reach attach -for 500ms took %s", took)
	}
	r := readReport(t, out)
	if d := r.Finished.Sub(r.Started); d < 500*time.Millisecond {
		t.Errorf("report covers %s (%s to %s), want at least -for 500ms", d, r.Started, r.Finished)
	}
	_, sym := observedSymbol(t, observedBinary(t, r, bin), textOSV, textPkg, "Parse")
	if sym.Status != report.Linked || sym.Hits != 0 {
		t.Errorf("Parse: status %s, %d hits; want linked, none", sym.Status, sym.Hits)
	}
	// The process runs on, unharmed: it still answers.
	fmt.Fprintln(in, "go")
	if l := readLine(t, lines, 10*time.Second); l != "en-US" {
		t.Errorf("program said %q after reach left, want en-US", l)
	}
	if err := prog.Wait(); err != nil {
		t.Errorf("program after reach left: %v", err)
	}
}
