package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

// fixtureDir holds the module proxy, the module cache and the copy of the
// stress program that the tests build; set by TestMain.
var fixtureDir string

func TestMain(m *testing.M) {
	probe.RunKeeperIfRequested() // the probe engine's keeper is this binary
	dir, err := setupFixtures()
	if err != nil {
		fmt.Fprintln(os.Stderr, "set up fixtures:", err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	testprog.Cleanup()
	testprog.RemoveAll(dir)
	os.Exit(code)
}

// setupFixtures serves testdata/hazard as example.com/hazard@v1.0.0 from a
// file:// module proxy and copies testdata/stress next to it, so that the
// stress program builds with a real module version for match to check.
func setupFixtures() (string, error) {
	dir, err := os.MkdirTemp("", "reach-reliability-")
	if err != nil {
		return "", err
	}
	v := module.Version{Path: "example.com/hazard", Version: "v1.0.0"}
	_, err = testprog.ServeModules(dir, map[module.Version]string{v: filepath.Join("testdata", "hazard")})
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(filepath.Join(dir, "stress"), os.DirFS(filepath.Join("testdata", "stress"))); err != nil {
		return "", err
	}
	return dir, nil
}

// envInt reads a count from the environment, for bench/reliability to
// scale the tests up; def when unset.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// figure logs one measured figure in the form bench/reliability parses.
func figure(t testing.TB, name string, n int) {
	t.Helper()
	t.Logf("reliability-figure %s=%d", name, n)
}

func buildStress(t testing.TB, v testprog.Variant) string {
	t.Helper()
	return testprog.Build(t, filepath.Join(fixtureDir, "stress"), v)
}

// buildReach builds cmd/reach once per test process.
func buildReach(t testing.TB) string {
	t.Helper()
	return testprog.Reach(t)
}

func dbDir(t testing.TB) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", "db"))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func fixtureDB(t testing.TB) *vulndb.Client {
	t.Helper()
	db, err := vulndb.New(dbDir(t), vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// probeSite is one place reach may put a probe, with the byte the file
// holds there.
type probeSite struct {
	symbol string
	osv    string
	site   binfo.Site
	orig   byte
}

// probeSites returns every probe site of the fixture database's symbols in
// the binary at path, as match computes them for reach.
func probeSites(t testing.TB, path string) []probeSite {
	t.Helper()
	bin, err := binfo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	entries, err := fixtureDB(t).ByModules(context.Background(), []string{"example.com/hazard"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := match.Match(context.Background(), bin, entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []probeSite
	for _, f := range res.Findings {
		for _, s := range f.Symbols {
			for _, tg := range s.Funcs {
				if tg.SiteErr != nil {
					t.Fatalf("%s: sites: %v", tg.Name, tg.SiteErr)
				}
				for _, site := range tg.Sites {
					if site.Offset >= uint64(len(raw)) {
						t.Fatalf("%s: site offset %#x beyond the file", tg.Name, site.Offset)
					}
					out = append(out, probeSite{symbol: s.Name, osv: f.Entry.ID, site: site.Site, orig: raw[site.Offset]})
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no probe sites for the fixture database", path)
	}
	return out
}

// entries reads the fixture database's entries.
func entries(t testing.TB) []*osv.Entry {
	t.Helper()
	es, err := fixtureDB(t).ByModules(context.Background(), []string{"example.com/hazard"})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// checkPristine waits up to 5s for every probe site in process pid to hold
// its original byte again, and fails naming the sites that do not, and the
// processes that hold BPF links.
func checkPristine(t testing.TB, pid int, exe string, sites []probeSite, what string) {
	t.Helper()
	if err := waitPristine(pid, exe, sites, 5*time.Second); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitPristine waits up to limit for every probe site in process pid to
// hold its original byte again.
func waitPristine(pid int, exe string, sites []probeSite, limit time.Duration) error {
	want := make([]testprog.CodeByte, len(sites))
	for i, s := range sites {
		want[i] = testprog.CodeByte{Off: s.site.Offset, Want: s.orig, Name: fmt.Sprintf("%s %s site", s.symbol, s.site.Kind)}
	}
	if err := testprog.WaitCodeBytes(pid, exe, want, limit); err != nil {
		return fmt.Errorf("probe sites still patched after reach left: %w", err)
	}
	return nil
}

// armedSites returns how many of sites hold an int3 (0xcc) in process pid
// where the file does not.
func armedSites(t testing.TB, pid int, exe string, sites []probeSite) int {
	t.Helper()
	offs := make([]uint64, len(sites))
	for i, s := range sites {
		offs[i] = s.site.Offset
	}
	got, err := testprog.CodeBytes(pid, exe, offs)
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	n := 0
	for i, s := range sites {
		if got[i] == 0xcc && s.orig != 0xcc {
			n++
		}
	}
	return n
}

func uprobeEvents() string {
	b, err := os.ReadFile("/sys/kernel/tracing/uprobe_events")
	if err != nil {
		b, _ = os.ReadFile("/sys/kernel/debug/tracing/uprobe_events")
	}
	return string(bytes.TrimSpace(b))
}

// stressProc is a running "stress until-eof" process.
type stressProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	rounds chan string   // "round N checksum X" lines
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
}

func startStress(t testing.TB, path string) *stressProc {
	t.Helper()
	cmd := exec.Command(path, "until-eof")
	cmd.Stderr = os.Stderr
	in, out := testprog.StartPiped(t, cmd)
	p := &stressProc{t: t, cmd: cmd, in: in, rounds: make(chan string, 1<<16), done: make(chan struct{})}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		<-p.done
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		p.err = cmd.Wait()
		close(p.done) // the cleanup waits for it
		t.Fatalf("stress said %q (%v), want ready", sc.Text(), sc.Err())
	}
	go func() {
		for sc.Scan() {
			p.rounds <- sc.Text()
		}
		close(p.rounds)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *stressProc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process has not exited.
func (p *stressProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop closes standard input, waits up to limit for the process to finish
// its round and exit, and returns the checksums of its rounds. It fails
// the test on a non-zero exit or a hang.
func (p *stressProc) stop(limit time.Duration) []string {
	p.t.Helper()
	p.in.Close()
	var sums []string
	timeout := time.After(limit)
	for {
		select {
		case l, ok := <-p.rounds:
			if !ok {
				select {
				case <-p.done:
					if p.err != nil {
						p.t.Fatalf("stress process %d: %v", p.pid(), p.err)
					}
				case <-timeout:
					p.t.Fatalf("stress process %d did not exit within %s", p.pid(), limit)
				}
				return sums
			}
			f := strings.Fields(l)
			if len(f) != 4 || f[0] != "round" || f[2] != "checksum" {
				p.t.Fatalf("stress process %d said %q", p.pid(), l)
			}
			sums = append(sums, f[3])
		case <-timeout:
			p.t.Fatalf("stress process %d did not exit within %s", p.pid(), limit)
		}
	}
}

// abandon kills the process and returns the checksums of the rounds it
// finished.
func (p *stressProc) abandon() []string {
	p.t.Helper()
	p.cmd.Process.Kill()
	var sums []string
	for l := range p.rounds {
		if f := strings.Fields(l); len(f) == 4 {
			sums = append(sums, f[3])
		}
	}
	return sums
}

var reference struct {
	sync.Mutex
	sums map[string]string
}

// referenceChecksum runs the program unobserved for one round and returns
// its checksum.
func referenceChecksum(t testing.TB, path string) string {
	t.Helper()
	reference.Lock()
	defer reference.Unlock()
	if s, ok := reference.sums[path]; ok {
		return s
	}
	cmd := exec.Command(path, "rounds", "2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("unobserved run of %s: %v\n%s", path, err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("unobserved run of %s said %q", path, out)
	}
	a, b := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(a) != 4 || len(b) != 4 || a[3] != b[3] {
		t.Fatalf("unobserved run of %s is not deterministic: %q", path, out)
	}
	if reference.sums == nil {
		reference.sums = map[string]string{}
	}
	reference.sums[path] = a[3]
	return a[3]
}

// kernelLeaks counts the kernel's "leaking uprobe" warnings in its log
// (testprog.KernelLeaks), or -1 when the log cannot be read.
func kernelLeaks() int {
	lines, err := testprog.KernelLeaks("")
	if err != nil {
		return -1
	}
	return len(lines)
}
