package observe

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/reach-sca/reach/internal/analysis"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

// fixtureDir holds the module proxy, module cache and the copy of the app
// that the tests build; set by TestMain.
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

// setupFixtures serves testdata/vuln as example.com/vuln@v1.0.0 from a
// file:// module proxy and copies testdata/app next to it, so that the app
// builds with a real module version for match to check.
func setupFixtures() (string, error) {
	dir, err := os.MkdirTemp("", "reach-observe-")
	if err != nil {
		return "", err
	}
	v := module.Version{Path: "example.com/vuln", Version: "v1.0.0"}
	if _, err := testprog.ServeModules(dir, map[module.Version]string{v: filepath.Join("testdata", "vuln")}); err != nil {
		return "", err
	}
	if err := os.CopyFS(filepath.Join(dir, "app"), os.DirFS(filepath.Join("testdata", "app"))); err != nil {
		return "", err
	}
	return dir, nil
}

func buildApp(t testing.TB, v testprog.Variant) string {
	t.Helper()
	return testprog.Build(t, filepath.Join(fixtureDir, "app"), v)
}

func fixtureDB(t testing.TB) *vulndb.Client {
	t.Helper()
	db, err := vulndb.New(filepath.Join("testdata", "db"), vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newSession(t testing.TB, db analysis.Entries, opts Options) *Session {
	t.Helper()
	testprog.RequireRoot(t)
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Targets.String() == "" {
		opts.Targets = SelectAll()
	}
	s, err := New(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// callLines maps each "// call:NAME" marker of the app to its line.
func callLines(t testing.TB) (file string, lines map[string]int) {
	t.Helper()
	file = filepath.Join(fixtureDir, "app", "main.go")
	return file, markerLines(t, file)
}

// markerLines maps each "// call:NAME" marker of file to its line.
func markerLines(t testing.TB, file string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`// call:(\w+)`)
	lines := map[string]int{}
	for i, l := range strings.Split(string(data), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			lines[m[1]] = i + 1
		}
	}
	return lines
}

// symbol returns the report symbol pkg.name of finding id in the binary
// at path.
func symbol(t testing.TB, r *report.Report, path, id, name string) *report.Symbol {
	t.Helper()
	for _, b := range r.Binaries {
		if b.Path != path {
			continue
		}
		for _, f := range b.Findings {
			if f.OSV != id {
				continue
			}
			for _, s := range f.Symbols {
				if s.Name == name {
					return s
				}
			}
		}
	}
	t.Fatalf("report has no symbol %s of %s in %s", name, id, path)
	return nil
}

func binaryOf(t testing.TB, r *report.Report, path string) *report.Binary {
	t.Helper()
	for _, b := range r.Binaries {
		if b.Path == path {
			return b
		}
	}
	t.Fatalf("report has no binary %s", path)
	return nil
}

// app is a running fixture app started by the test, not by a session.
type app struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startApp(t testing.TB, path string, args ...string) *app {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Stderr = os.Stderr
	in, out := testprog.StartPiped(t, cmd)
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &app{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

func (a *app) expect(want string) {
	a.t.Helper()
	if !a.out.Scan() {
		a.t.Fatalf("app output ended before %q: %v", want, a.out.Err())
	}
	if got := a.out.Text(); got != want {
		a.t.Fatalf("app said %q, want %q", got, want)
	}
}

func (a *app) wait() {
	a.t.Helper()
	a.in.Close()
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			a.t.Fatalf("app: %v", err)
		}
	case <-time.After(10 * time.Second):
		a.t.Fatal("app did not exit")
	}
}

// closeAndReport closes s and returns its final report.
func closeAndReport(t testing.TB, s *Session) *report.Report {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Report(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logReport(t, r)
	return r
}

// logReport logs the report as JSON in verbose runs.
func logReport(t testing.TB, r *report.Report) {
	t.Helper()
	if !testing.Verbose() {
		return
	}
	var b strings.Builder
	if err := report.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	t.Log(b.String())
}
