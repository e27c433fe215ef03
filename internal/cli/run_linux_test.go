package cli

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// The tests of this file and attach_linux_test.go run the real reach binary,
// built once per test process, against the real vulnerability database
// and fixture programs of testdata/progs that use vulnerable modules. They
// need root for the probes: without it they skip, and fail in CI.

// TestRunTextYAML runs textyaml in every build variant: its exit status
// and standard output pass through, language.Parse is reached from
// main.main, and an entry none of whose symbols is in the binary stays
// imported.
func TestRunTextYAML(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "textyaml")
	src := filepath.Join(dir, "main.go")
	line := sourceLine(t, src, "language.Parse(")
	for _, v := range append(testprog.Variants, testprog.StrippedPIE) {
		t.Run(v.Name, func(t *testing.T) {
			bin := testprog.Build(t, dir, v)
			out := filepath.Join(t.TempDir(), "report.json")
			res := runReach(t, "run", "-db", db, "-format", "json", "-o", out, "--", bin)
			if res.code != 0 {
				t.Fatalf("exit %d, want the program's 0\n%s", res.code, res.stderr)
			}
			if res.stdout != "en-US\n" {
				t.Errorf("standard output %q, want the program's %q alone", res.stdout, "en-US\n")
			}
			r := readReport(t, out)
			if r.Schema != report.Schema || r.Mode != "run" {
				t.Errorf("schema %q mode %q, want %q run", r.Schema, r.Mode, report.Schema)
			}
			b := observedBinary(t, r, bin)
			if b.Stripped != v.Stripped || b.PIE != v.PIE {
				t.Errorf("stripped=%v pie=%v, want %v %v", b.Stripped, b.PIE, v.Stripped, v.PIE)
			}
			if len(b.PIDs) != 1 {
				t.Errorf("pids %v, want the program's one", b.PIDs)
			}
			f, sym := observedSymbol(t, b, textOSV, textPkg, "Parse")
			wantReached(t, sym, "main.main", src, line, 0)
			if f.Status != report.Reached {
				t.Errorf("%s: finding status %s, want reached", textOSV, f.Status)
			}
			// x/text v0.3.5 is affected by GO-2022-1059, whose symbols
			// (language.ParseAcceptLanguage, MatchStrings) the program
			// does not link.
			if g := findFinding(b, "GO-2022-1059"); g == nil || g.Status != report.Imported || len(g.Symbols) != 0 {
				t.Errorf("GO-2022-1059 should stay imported with no symbols: %+v", g)
			}
		})
	}
}

// TestRunOldToolchainStdlib runs a program built with Go 1.21.0, whose
// standard library is vulnerable: net/mail.ParseAddress is reached.
func TestRunOldToolchainStdlib(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "stdmail")
	src := filepath.Join(dir, "main.go")
	bin := testprog.Build(t, dir, testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"})
	out := filepath.Join(t.TempDir(), "report.json")
	res := runReach(t, "run", "-db", db, "-format", "json", "-o", out, "--", bin)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if res.stdout != "Gopher gopher@example.com\n" {
		t.Errorf("standard output %q", res.stdout)
	}
	b := observedBinary(t, readReport(t, out), bin)
	if b.GoVersion != "go1.21.0" {
		t.Errorf("go version %q, want go1.21.0", b.GoVersion)
	}
	f, sym := observedSymbol(t, b, "GO-2024-2609", "net/mail", "ParseAddress")
	if f.Module != "stdlib" || f.Status != report.Reached {
		t.Errorf("GO-2024-2609: module %s status %s, want stdlib reached", f.Module, f.Status)
	}
	wantReached(t, sym, "main.main", src, sourceLine(t, src, "mail.ParseAddress("), 0)
}

// TestRunExitStatus checks that reach run exits with its program's status
// (128+N for signal N), that -fail-on turns a clean exit with findings into
// 3, and that the report is written however the program ended.
func TestRunExitStatus(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "lifecycle")
	src := filepath.Join(dir, "main.go")
	line := sourceLine(t, src, "language.Parse(")
	bin := testprog.Build(t, dir, testprog.Plain)
	for _, tc := range []struct {
		name   string
		flags  []string
		args   []string
		code   int
		stderr string // in reach's standard error, from the program
	}{
		{"clean", nil, []string{"parse"}, 0, ""},
		{"status 7", nil, []string{"exit", "7"}, 7, ""},
		{"panic", nil, []string{"panic"}, 2, "panic: lifecycle: panic after calling language.Parse"},
		{"SIGKILL", nil, []string{"kill"}, 128 + int(syscall.SIGKILL), ""},
		{"fail-on reached", []string{"-fail-on", "reached"}, []string{"parse"}, ExitFound, ""},
		{"fail-on linked", []string{"-fail-on", "linked"}, []string{"parse"}, ExitFound, ""},
		// The program's own failure wins over the threshold.
		{"fail-on with status 7", []string{"-fail-on", "reached"}, []string{"exit", "7"}, 7, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			args := append([]string{"run", "-db", db, "-format", "json", "-o", out}, tc.flags...)
			args = append(append(args, "--", bin), tc.args...)
			res := runReach(t, args...)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", res.code, tc.code, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("standard error lacks the program's %q:\n%s", tc.stderr, res.stderr)
			}
			if tc.code != ExitFound && strings.Contains(res.stderr, "reach:") {
				t.Errorf("reach printed a message for the program's own status:\n%s", res.stderr)
			}
			_, sym := observedSymbol(t, observedBinary(t, readReport(t, out), bin), textOSV, textPkg, "Parse")
			wantReached(t, sym, "main.parse", src, line, 0)
		})
	}
}

// TestRunForwardsSIGTERM sends SIGTERM to reach while its program runs:
// the program gets it, exits 0 on its own terms, and reach exits 0 with
// the report written.
func TestRunForwardsSIGTERM(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "lifecycle")
	src := filepath.Join(dir, "main.go")
	bin := testprog.Build(t, dir, testprog.Plain)
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(reachBin(t), "run", "-db", db, "-format", "json", "-o", out, "--", bin, "trap")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(stdout)
	if l := readLine(t, lines, 10*time.Second); l != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("program said %q, want ready\n%s", l, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(lines)
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("reach: %v (exit %d), want 0: the program trapped SIGTERM and exited 0\n%s", err, code, stderr.String())
	}
	if string(rest) != "terminated\n" {
		t.Errorf("program output after the signal %q, want %q: SIGTERM did not reach it", rest, "terminated\n")
	}
	_, sym := observedSymbol(t, observedBinary(t, readReport(t, out), bin), textOSV, textPkg, "Parse")
	wantReached(t, sym, "main.parse", src, sourceLine(t, src, "language.Parse("), 0)
}

// TestRunCount checks that -count counts every call of a vulnerable
// function, and that without it the first hit alone is enough.
func TestRunCount(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "lifecycle")
	src := filepath.Join(dir, "main.go")
	line := sourceLine(t, src, "language.Parse(")
	bin := testprog.Build(t, dir, testprog.Plain)
	for _, n := range []uint64{1, 7, 1000} {
		t.Run(itoa(n), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			res := runReach(t, "run", "-db", db, "-count", "-format", "json", "-o", out, "--", bin, "count", itoa(n))
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			if res.stdout != itoa(n)+"\n" {
				t.Errorf("program output %q, want %d", res.stdout, n)
			}
			_, sym := observedSymbol(t, observedBinary(t, readReport(t, out), bin), textOSV, textPkg, "Parse")
			wantReached(t, sym, "main.parse", src, line, n)
		})
	}
}

// TestUnprivileged runs reach as nobody: run and attach fail with exit 1
// and a message naming the capabilities it lacks, and run does not start
// the program unobserved.
func TestUnprivileged(t *testing.T) {
	testprog.RequireRoot(t) // to switch to another user
	db := realDB(t)
	// A directory anyone can read, holding a copy of reach and a home.
	tmp, err := os.MkdirTemp("", "reach-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	home := filepath.Join(tmp, "home")
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(tmp, "reach")
	copyFile(t, reachBin(t), exe, 0o755)
	prog := filepath.Join(tmp, "lifecycle")
	copyFile(t, testprog.Build(t, testprog.Dir(t, "lifecycle"), testprog.Plain), prog, 0o755)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"run", []string{"run", "-db", db, "--", prog, "parse"}},
		// The test process is a Go program to attach to.
		{"attach", []string{"attach", "-db", db, itoa(uint64(os.Getpid()))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exe, tc.args...)
			cmd.Dir = tmp
			cmd.Env = []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "PATH=/usr/bin:/bin"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			msg := errb.String()
			if !strings.Contains(msg, "CAP_BPF") || !strings.Contains(msg, "CAP_PERFMON") || !strings.Contains(msg, "root") {
				t.Errorf("message does not name CAP_BPF, CAP_PERFMON and root:\n%s", msg)
			}
			if out.Len() != 0 {
				t.Errorf("standard output %q: nothing should run or be reported", out.String())
			}
		})
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
