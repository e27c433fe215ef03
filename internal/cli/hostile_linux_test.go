package cli

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// The tests of this file play another local user against reach run as
// root: files planted in directories that user can write, a targets file
// swapped mid-run, FIFOs and devices where files are expected.

// secretLine is the content of a root-only file that must never show up
// in reach's output.
const secretLine = "root:$y$j9T$SECRET-HASH-3f1c9a:19000:0:99999:7:::"

// secretFile writes a root-only file holding secretLine.
func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte(secretLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkSecret(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if fi.Mode() != 0o600 || string(b) != secretLine+"\n" {
		t.Fatalf("the secret changed: mode %v, content %q", fi.Mode(), b)
	}
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "SECRET") || strings.Contains(s, "j9T") {
		t.Errorf("%s shows the secret:\n%s", what, s)
	}
}

// reachWithin runs reach in this process and fails the test when it takes
// longer than d: the hangs these tests look for last for ever.
func reachWithin(t *testing.T, d time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	type res struct {
		out, err string
		code     int
	}
	done := make(chan res, 1)
	go func() {
		var out, errb bytes.Buffer
		err := Run(context.Background(), args, bytes.NewReader(nil), &out, &errb)
		code := ExitCode(err, &errb) // writes the error
		done <- res{out.String(), errb.String(), code}
	}()
	select {
	case r := <-done:
		return r.out, r.err, r.code
	case <-time.After(d):
		t.Fatalf("reach %s still runs after %s", strings.Join(args, " "), d)
	}
	return
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := unix.Mkfifo(path, 0o666); err != nil {
		t.Fatal(err)
	}
}

// TestScanFIFO: reach scan of a FIFO (which no one writes) fails at once
// with a message naming it, instead of waiting for ever.
func TestScanFIFO(t *testing.T) {
	db := realDB(t)
	fifo := filepath.Join(t.TempDir(), "prog")
	mkfifo(t, fifo)
	_, stderr, code := reachWithin(t, 20*time.Second, "scan", "-db", db, fifo)
	if code != 1 || !strings.Contains(stderr, fifo) || !strings.Contains(stderr, "not a regular file") {
		t.Fatalf("exit %d, want 1 with a message naming %s as not a regular file:\n%s", code, fifo, stderr)
	}
}

// TestOutputNotReplaced writes reports with -o onto a null device and a
// FIFO made in a temporary directory, and onto /dev/stdout of a reach
// process whose standard output is a pipe, then a file: each is written
// to and stays what it was.
func TestOutputNotReplaced(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	dir := t.TempDir()

	null := filepath.Join(dir, "null")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := reachWithin(t, time.Minute, "scan", "-db", db, "-o", null, bin)
	if code != 3 {
		t.Fatalf("scan -o %s: exit %d, want 3 (linked findings)\n%s", null, code, stderr)
	}
	var st unix.Stat_t
	if err := unix.Lstat(null, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Fatalf("%s is no longer a null device: mode %#o, %v", null, st.Mode, err)
	}

	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo) // waits for reach, the writer
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		var b bytes.Buffer
		b.ReadFrom(f)
		got <- b.Bytes()
	}()
	// The reader may not be there yet: reach then says so, and the next
	// try finds it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, stderr, code = reachWithin(t, time.Minute, "scan", "-db", db, "-format", "json", "-o", fifo, bin)
		if code == 3 || time.Now().After(deadline) {
			break
		}
		if !strings.Contains(stderr, "no reader") {
			t.Fatalf("scan -o FIFO: exit %d\n%s", code, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 3 {
		t.Fatalf("scan -o FIFO: exit %d\n%s", code, stderr)
	}
	select {
	case b := <-got:
		if _, err := report.ReadJSON(bytes.NewReader(b)); err != nil {
			t.Fatalf("the FIFO's reader got no report: %v\n%s", err, b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the FIFO's reader got nothing")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v", err)
	}

	// /dev/stdout of a reach process: a pipe, then a file.
	reach := reachBin(t)
	for _, toFile := range []bool{false, true} {
		cmd := exec.Command(reach, "scan", "-db", db, "-format", "json", "-o", "/dev/stdout", bin)
		var out bytes.Buffer
		var f *os.File
		if toFile {
			var err error
			if f, err = os.Create(filepath.Join(dir, "stdout.json")); err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = f
		} else {
			cmd.Stdout = &out
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Fatalf("-o /dev/stdout: exit %d\n%s", code, errb.String())
		}
		if toFile {
			f.Close()
			b, _ := os.ReadFile(f.Name())
			out.Write(b)
		}
		if _, err := report.ReadJSON(&out); err != nil {
			t.Fatalf("-o /dev/stdout (a file: %v): no report on standard output: %v", toFile, err)
		}
		if fi, err := os.Lstat("/dev/stdout"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("/dev/stdout is no longer a link: %v", err)
		}
	}
}

// TestStreamPlanted plants, as another user in a sticky directory, a link
// to a root-only file and a dangling link where reach run -stream will
// write: reach refuses both at once, the secret is unchanged and nothing
// is created where the dangling link points.
func TestStreamPlanted(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	tmp := testprog.SharedDir(t, 0, os.ModeSticky|0o777)
	secret := secretFile(t)
	nowhere := filepath.Join(filepath.Dir(secret), "created")
	for name, target := range map[string]string{"link": secret, "dangling": nowhere} {
		link := filepath.Join(tmp, name)
		if err := testprog.AsOther(t, func() error { return os.Symlink(target, link) }); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := reachWithin(t, 20*time.Second, "run", "-db", db, "-stream", link, "--", "/bin/true")
		if code != 1 || !strings.Contains(stderr, link) || !strings.Contains(stderr, "symbolic link") {
			t.Errorf("-stream %s: exit %d, want 1 with a message about the link\n%s", name, code, stderr)
		}
	}
	checkSecret(t, secret)
	if _, err := os.Lstat(nowhere); err == nil {
		t.Fatal("reach created the file the dangling link points to")
	}
}

// TestTargetsRefused starts reach run with targets files it must refuse
// before the program runs, each within seconds and with a message saying
// why: a FIFO, a link to a root-only file, and a file another user owns.
func TestTargetsRefused(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.SharedDir(t, testprog.OtherUID, 0o755)
	secret := secretFile(t)
	fifo := filepath.Join(dir, "fifo")
	link := filepath.Join(dir, "link")
	theirs := filepath.Join(dir, "theirs")
	err := testprog.AsOther(t, func() error {
		if err := unix.Mkfifo(fifo, 0o666); err != nil {
			return err
		}
		if err := os.Symlink(secret, link); err != nil {
			return err
		}
		return os.WriteFile(theirs, []byte("GO-2021-0113\n"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{fifo, "not a regular file"},
		{link, "symbolic link"},
		{theirs, "owned by user 54321"},
	} {
		marker := filepath.Join(t.TempDir(), "ran")
		stdout, stderr, code := reachWithin(t, 20*time.Second, "run", "-db", db, "-targets", tc.file, "--", "/bin/touch", marker)
		if code != 1 || !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, tc.want) {
			t.Errorf("-targets %s: exit %d, want 1 with %q\n%s", tc.file, code, tc.want, stderr)
		}
		noSecret(t, "stderr", stderr)
		noSecret(t, "stdout", stdout)
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("-targets %s: the program ran", tc.file)
		}
	}
}

// TestTargetsSwapped swaps, as another user who can write its directory,
// the targets file of a running reach run for a link to a root-only file
// and then for a FIFO. Each is refused with a note and the targets stay;
// the program's call is still observed, reach exits within seconds of the
// program, and neither the report nor any output shows the secret.
func TestTargetsSwapped(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	reach := reachBin(t)
	prog := testprog.Build(t, testprog.Dir(t, "lifecycle"), testprog.Plain)
	dir := testprog.SharedDir(t, testprog.OtherUID, 0o755)
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte(textOSV+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := secretFile(t)
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(reach, "run", "-db", db, "-format", "json", "-o", out, "-targets", targets, "--", prog, "wait")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, stdout := testprog.StartPiped(t, cmd)
	defer cmd.Process.Kill()
	lines := bufio.NewReader(stdout)
	if l := readLine(t, lines, 10*time.Second); l != "ready" {
		t.Fatalf("the program said %q, want ready\n%s", l, stderr.String())
	}
	swap := func(plant func(tmp string) error) {
		t.Helper()
		err := testprog.AsOther(t, func() error {
			tmp := filepath.Join(dir, "new")
			if err := plant(tmp); err != nil {
				return err
			}
			return os.Rename(tmp, targets)
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the watcher polls every 200ms
	}
	swap(func(tmp string) error { return os.Symlink(secret, tmp) })
	swap(func(tmp string) error { return unix.Mkfifo(tmp, 0o666) })
	start := time.Now()
	in.Write([]byte("\n"))
	in.Close()
	var rest bytes.Buffer
	done := make(chan error, 1)
	go func() {
		rest.ReadFrom(lines)
		done <- cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("reach still runs 15s after its program was told to exit\n%s", stderr.String())
	}
	t.Logf("reach exited %v after its program was told to exit", time.Since(start).Round(time.Millisecond))
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d, want the program's 0\n%s", code, stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, stderr.String())
	}
	noSecret(t, "the report", string(raw))
	noSecret(t, "stderr", stderr.String())
	noSecret(t, "stdout", rest.String())
	r := readReport(t, out)
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"symbolic link", "not a regular file"} {
		if !strings.Contains(notes, want) {
			t.Errorf("the notes do not say the targets file became %s:\n%s", want, notes)
		}
	}
	_, sym := observedSymbol(t, observedBinary(t, r, prog), textOSV, textPkg, "Parse")
	if sym.Status != report.Reached {
		t.Errorf("Parse %s, want reached: the first targets should have stayed", sym.Status)
	}
	checkSecret(t, secret)
}
