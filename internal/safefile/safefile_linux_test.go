package safefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/testprog"
)

// otherDir returns a new directory owned by the other user (mode 0755).
func otherDir(t *testing.T) string {
	return testprog.SharedDir(t, testprog.OtherUID, 0o755)
}

// stickyDir returns a new directory like /tmp: root's, sticky, mode 0777.
func stickyDir(t *testing.T) string {
	return testprog.SharedDir(t, 0, os.ModeSticky|0o777)
}

func asOther(t *testing.T, fn func() error) error {
	t.Helper()
	return testprog.AsOther(t, fn)
}

// secret writes a root-only file and returns its path and content.
func secret(t *testing.T) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	content := []byte("root:$y$j9T$SECRET-HASH-3f1c9a:19000:0:99999:7:::\n")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, content
}

func checkUnchanged(t *testing.T, path string, content []byte, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("victim %s: %v", path, err)
	}
	if fi.Mode() != mode {
		t.Fatalf("victim %s: mode %v, want %v", path, fi.Mode(), mode)
	}
	if content != nil {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("victim %s changed: %q, %v", path, got, err)
		}
	}
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// TestWriteFileRenameRace writes reports again and again into a directory
// another user owns, while that user, woken by inotify, renames a symbolic
// link to a root-only file over each temporary file the moment it appears
// (the attack that made the old chmod by name follow the link, and leak
// the file). The secret's mode and content never change.
func TestWriteFileRenameRace(t *testing.T) {
	dir := otherDir(t)
	victim, content := secret(t)
	const writes = 500
	swaps := raceLinks(t, dir, victim, func() {
		WriteFile(filepath.Join(dir, "r.json"), 0o644, func(w io.Writer) error {
			time.Sleep(200 * time.Microsecond) // rendering takes a while
			_, err := io.WriteString(w, `{"report":1}`)
			return err
		})
		checkUnchanged(t, victim, content, 0o600)
	}, writes)
	t.Logf("%d writes, %d temporary files swapped for a link to the secret", writes, swaps)
	if swaps == 0 {
		t.Fatal("the attacker never won the race to a temporary file: nothing was tested")
	}
}

// raceLinks calls write n times while another user, woken by inotify,
// renames a link to victim over every file whose name starts with
// ".reach-" created in dir. It returns how many renames succeeded.
func raceLinks(t *testing.T, dir, victim string, write func(), n int) int64 {
	t.Helper()
	var swaps atomic.Int64
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(ifd, dir, unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- asOther(t, func() error {
			buf := make([]byte, 64<<10)
			link := filepath.Join(dir, ".link")
			for {
				os.Symlink(victim, link)
				nr, err := unix.Read(ifd, buf)
				if err != nil || nr <= 0 {
					return nil // closed: the writes are over
				}
				for off := 0; off+unix.SizeofInotifyEvent <= nr; {
					ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
					name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
					off += unix.SizeofInotifyEvent + int(ev.Len)
					if !strings.HasPrefix(name, ".reach-") {
						continue
					}
					if os.Rename(link, filepath.Join(dir, name)) == nil {
						swaps.Add(1)
						os.Symlink(victim, link)
					}
				}
			}
		})
	}()
	for range n {
		write()
	}
	unix.Close(ifd)
	// Wake a blocked read: create one more file.
	os.WriteFile(filepath.Join(dir, "wake"), nil, 0o600)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the attacker did not stop")
	}
	return swaps.Load()
}

// TestWriteFileSpecial checks that an output that is a device, a FIFO or a
// link to one is written to and left what it was, and that links other
// users could have planted are replaced, not followed.
func TestWriteFileSpecial(t *testing.T) {
	testprog.RequireRoot(t)
	dir := t.TempDir()

	t.Run("null device", func(t *testing.T) {
		null := filepath.Join(dir, "null")
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(null, 0o644, writeString("report\n")); err != nil {
			t.Fatal(err)
		}
		checkDevice(t, null)
		// Through a link in a directory only root writes: followed.
		link := filepath.Join(dir, "null-link")
		os.Symlink(null, link)
		if err := WriteFile(link, 0o644, writeString("report\n")); err != nil {
			t.Fatal(err)
		}
		checkDevice(t, null)
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link to the device was replaced: %v %v", fi.Mode(), err)
		}
	})

	t.Run("FIFO with a reader", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		ready := make(chan struct{})
		go func() {
			f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
			close(ready)
			if err != nil {
				got <- err.Error()
				return
			}
			defer f.Close()
			unix.SetNonblock(int(f.Fd()), false)
			var b bytes.Buffer
			for b.Len() < len("report\n") {
				buf := make([]byte, 64)
				n, err := f.Read(buf)
				b.Write(buf[:n])
				if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			got <- b.String()
		}()
		<-ready
		if err := WriteFile(fifo, 0o644, writeString("report\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != "report\n" {
				t.Fatalf("the reader got %q", s)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the reader got nothing in 10s")
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the FIFO was replaced: %v %v", fi.Mode(), err)
		}
	})

	t.Run("FIFO without a reader", func(t *testing.T) {
		fifo := filepath.Join(dir, "lonely")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := WriteFile(fifo, 0o644, writeString("report\n"))
		if err == nil || !strings.Contains(err.Error(), "no reader") {
			t.Fatalf("err = %v, want one saying the FIFO has no reader", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the FIFO was replaced: %v %v", fi.Mode(), err)
		}
	})

	t.Run("link in another user's directory", func(t *testing.T) {
		other := otherDir(t)
		victim, content := secret(t)
		null := filepath.Join(dir, "null2")
		unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		for _, target := range []string{victim, null, filepath.Join(t.TempDir(), "dangling")} {
			link := filepath.Join(other, "r.json")
			os.Remove(link)
			if err := asOther(t, func() error { return os.Symlink(target, link) }); err != nil {
				t.Fatal(err)
			}
			if err := WriteFile(link, 0o644, writeString("report\n")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(link)
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s: the link was not replaced by the report: %v", target, err)
			}
			if b, _ := os.ReadFile(link); string(b) != "report\n" {
				t.Fatalf("report %q", b)
			}
		}
		checkUnchanged(t, victim, content, 0o600)
		checkDevice(t, null)
		if _, err := os.Lstat(filepath.Join(filepath.Dir(victim), "dangling")); err == nil {
			t.Fatal("a file was created where a dangling link pointed")
		}
	})

	// In their own directory too: a reader that never reads would stall
	// reach for good, deaf to signals, in a write to the FIFO.
	for name, dir := range map[string]func(*testing.T) string{"a sticky directory": stickyDir, "their own directory": otherDir} {
		t.Run("other user's FIFO in "+name, func(t *testing.T) {
			otherFIFO(t, filepath.Join(dir(t), "r.json"))
		})
	}

	t.Run("own link to a regular file", func(t *testing.T) {
		target := filepath.Join(dir, "target.json")
		os.WriteFile(target, []byte("old"), 0o600)
		link := filepath.Join(dir, "latest.json")
		os.Symlink("target.json", link)
		if err := WriteFile(link, 0o644, writeString("new")); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatal("the link was replaced")
		}
		if b, _ := os.ReadFile(target); string(b) != "new" {
			t.Fatalf("target holds %q", b)
		}
	})

	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		for _, name := range []string{d, d + "/", d + "/.", d + "/..", ""} {
			if err := WriteFile(name, 0o644, writeString("x")); err == nil {
				t.Errorf("wrote to %q", name)
			}
			if f, err := OpenAppend(name, 0o644); err == nil {
				f.Close()
				t.Errorf("appended to %q", name)
			}
		}
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Fatalf("files written in %s: %v", d, ents)
		}
	})

	t.Run("mode", func(t *testing.T) {
		p := filepath.Join(dir, "new.json")
		old := unix.Umask(0o022)
		defer unix.Umask(old)
		if err := WriteFile(p, 0o644, writeString("x")); err != nil {
			t.Fatal(err)
		}
		checkUnchanged(t, p, []byte("x"), 0o644)
		if m, _ := filepath.Glob(filepath.Join(dir, ".reach-*")); len(m) > 0 {
			t.Fatalf("temporary files left: %v", m)
		}
	})
}

func checkDevice(t *testing.T, path string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Fatalf("%s is no longer the null device: mode %#o rdev %#x", path, st.Mode, st.Rdev)
	}
}

// TestWriteFileStdout writes to /dev/stdout in a child process whose
// standard output is a pipe, then a file: the pipe gets the report, the
// file holds it, and /dev/stdout stays a link.
func TestWriteFileStdout(t *testing.T) {
	testprog.RequireRoot(t)
	if os.Getenv("SAFEFILE_WRITE_STDOUT") == "1" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdout io.Writer) {
		cmd := exec.Command(self, "-test.run=^TestWriteFileStdoutChild$")
		cmd.Env = append(os.Environ(), "SAFEFILE_WRITE_STDOUT=1")
		cmd.Stdout = stdout
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("child: %v\n%s", err, errb.String())
		}
	}
	var pipe bytes.Buffer
	run(&pipe)
	if !strings.HasPrefix(pipe.String(), "report from the child\n") {
		t.Fatalf("the pipe got %q", pipe.String())
	}
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	run(f)
	f.Close()
	if b, _ := os.ReadFile(out); !strings.HasPrefix(string(b), "report from the child\n") {
		t.Fatalf("the file holds %q", b)
	}
	if fi, err := os.Lstat("/dev/stdout"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("/dev/stdout is no longer a link: %v", err)
	}
}

func TestWriteFileStdoutChild(t *testing.T) {
	if os.Getenv("SAFEFILE_WRITE_STDOUT") != "1" {
		t.Skip("run by TestWriteFileStdout")
	}
	if err := WriteFile("/dev/stdout", 0o644, writeString("report from the child\n")); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAppend plants, as another user in a sticky directory, what
// -stream must refuse: links to a root-only file and to nowhere, a file of
// that user's, a hard link and a FIFO. Each is refused at once, nothing is
// written through, and reach's own file is appended to.
func TestOpenAppend(t *testing.T) {
	tmp := stickyDir(t)
	victim, content := secret(t)
	dangling := filepath.Join(filepath.Dir(victim), "created")
	for _, tc := range []struct {
		name  string
		plant func(p string) error
		want  error
	}{
		{"link to a root file", func(p string) error { return os.Symlink(victim, p) }, ErrSymlink},
		{"dangling link", func(p string) error { return os.Symlink(dangling, p) }, ErrSymlink},
		{"other user's file", func(p string) error { return os.WriteFile(p, nil, 0o666) }, ErrUntrusted},
		{"FIFO", func(p string) error { return unix.Mkfifo(p, 0o666) }, ErrNotRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(tmp, strings.ReplaceAll(tc.name, " ", "-"))
			if err := asOther(t, func() error { return tc.plant(p) }); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			f, err := OpenAppend(p, 0o644)
			if err == nil {
				f.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	t.Run("hard link", func(t *testing.T) {
		own := filepath.Join(t.TempDir(), "own")
		os.WriteFile(own, nil, 0o600)
		p := filepath.Join(tmp, "hardlink")
		if err := os.Link(own, p); err != nil {
			testprog.Skip(t, fmt.Sprintf("no hard link across these directories: %v", err))
		}
		if _, err := OpenAppend(p, 0o644); !errors.Is(err, ErrUntrusted) {
			t.Fatalf("err = %v, want %v", err, ErrUntrusted)
		}
	})
	t.Run("hard link in another user's directory", func(t *testing.T) {
		// Not writable by others, but by its owner, who could link a
		// root file there where protected_hardlinks is off (root plays
		// that part here).
		p := filepath.Join(otherDir(t), "hardlink")
		if err := os.Link(victim, p); err != nil {
			testprog.Skip(t, fmt.Sprintf("no hard link across these directories: %v", err))
		}
		if f, err := OpenAppend(p, 0o644); !errors.Is(err, ErrUntrusted) {
			if err == nil {
				f.Close()
			}
			t.Fatalf("err = %v, want %v", err, ErrUntrusted)
		}
	})
	checkUnchanged(t, victim, content, 0o600)
	if _, err := os.Lstat(dangling); err == nil {
		t.Fatal("a file was created where the dangling link pointed")
	}

	p := filepath.Join(tmp, "own.ndjson")
	for i := range 2 {
		f, err := OpenAppend(p, 0o644)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		f.WriteString("line\n")
		f.Close()
	}
	if b, _ := os.ReadFile(p); string(b) != "line\nline\n" {
		t.Fatalf("appended %q", b)
	}
}

// TestOpen checks that reading refuses a FIFO (at once, with no writer)
// and a device, and that OpenNoFollow refuses a link.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "reg")
	os.WriteFile(reg, []byte("x"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(reg, link)
	for _, tc := range []struct {
		name string
		open func(string) (*os.File, error)
		path string
		want error
	}{
		{"FIFO", Open, fifo, ErrNotRegular},
		{"device", Open, "/dev/zero", ErrNotRegular},
		{"directory", Open, dir, ErrNotRegular},
		{"link", OpenNoFollow, link, ErrSymlink},
		{"followed link", Open, link, nil},
		{"regular", OpenNoFollow, reg, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			f, err := tc.open(tc.path)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				if string(b) != "x" {
					t.Fatalf("read %q", b)
				}
			}
		})
	}
}

// TestMkdirAll checks that a cache directory is created only where no other
// user can change it: not under another user's directory (their home,
// kept by sudo as XDG_CACHE_HOME), not through a link they planted, not in
// a directory others can write that is not sticky; and that it is created
// where root or this user owns every directory, /tmp's sticky ones
// included.
func TestMkdirAll(t *testing.T) {
	testprog.RequireRoot(t)
	victimDir := t.TempDir() // root's: a link to it makes root write there
	other := otherDir(t)
	if err := asOther(t, func() error {
		if err := os.MkdirAll(filepath.Join(other, ".cache", "reach"), 0o755); err != nil {
			return err
		}
		return os.Symlink(victimDir, filepath.Join(other, ".cache", "reach", "kernel"))
	}); err != nil {
		t.Fatal(err)
	}
	open := testprog.SharedDir(t, 0, 0o777) // root's, but anyone may rename in it
	if err := os.Symlink(victimDir, filepath.Join(open, "link")); err != nil {
		t.Fatal(err)
	}
	sticky := stickyDir(t)
	if err := asOther(t, func() error { return os.Symlink(victimDir, filepath.Join(sticky, "otherlink")) }); err != nil {
		t.Fatal(err)
	}
	mine := t.TempDir()
	if err := os.Symlink(t.TempDir(), filepath.Join(mine, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		ok         bool
	}{
		{"other user's home", filepath.Join(other, ".cache", "reach", "vulndb", "x"), false},
		{"link planted by the other user", filepath.Join(other, ".cache", "reach", "kernel"), false},
		{"other user's directory, missing below", filepath.Join(other, "new", "cache"), false},
		{"writable by all, not sticky", filepath.Join(open, "cache"), false},
		{"root's link in a directory all can write", filepath.Join(open, "link", "cache"), false},
		{"other user's link in a sticky directory", filepath.Join(sticky, "otherlink", "cache"), false},
		{"root's directory", filepath.Join(t.TempDir(), "a", "b"), true},
		{"root's link in root's directory", filepath.Join(mine, "link", "cache"), true},
		{"in a sticky directory", filepath.Join(sticky, "cache", "reach"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := MkdirAll(tc.path, 0o755)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(tc.path); err != nil || !fi.IsDir() {
					t.Fatalf("not created: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUntrusted) {
				t.Fatalf("MkdirAll(%s) = %v, want ErrUntrusted", tc.path, err)
			}
			if _, err := os.Lstat(tc.path); err == nil && !strings.HasSuffix(tc.path, "kernel") {
				t.Errorf("%s created despite the error", tc.path)
			}
			if ents, _ := os.ReadDir(victimDir); len(ents) != 0 {
				t.Errorf("created in the link's target: %v", ents)
			}
		})
	}
}

// otherFIFO has the other user make a FIFO at fifo and hold it open for
// reading, and checks that WriteFile refuses it.
func otherFIFO(t *testing.T, fifo string) {
	t.Helper()
	if err := asOther(t, func() error { return unix.Mkfifo(fifo, 0o666) }); err != nil {
		t.Fatal(err)
	}
	// The other user reads it: were reach to write, it would not wait.
	go func() {
		asOther(t, func() error {
			f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		})
	}()
	if err := WriteFile(fifo, 0o644, writeString("report\n")); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("err = %v, want %v", err, ErrUntrusted)
	}
	// Let the reader go.
	if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
		f.Close()
	}
}
