package probe

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/probe/keeper"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestKeeperConfined starts engines (with uprobe_multi links and with
// classic uprobes) from a process that holds every capability, an
// environment variable and a descriptor it inherited without
// close-on-exec, and reads the keeper's /proc entries: every thread holds
// keeper.Caps at most, in every set, with no_new_privs; its environment is
// keeper.Env alone; its descriptors are its standard streams, its socket
// and its own. The keeper still counts calls and removes probes.
func TestKeeperConfined(t *testing.T) {
	testprog.RequireRoot(t)
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	t.Setenv("REACH_TEST_SECRET", "hunter2")
	leak := filepath.Join(t.TempDir(), "inherited")
	f, err := os.Create(leak)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// As a descriptor reach inherited from its caller would be.
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	// A copy of the program in a directory only another user may search:
	// the keeper needs CAP_DAC_READ_SEARCH for the kernel to find it.
	private := testprog.SharedDir(t, testprog.OtherUID, 0o700)
	hidden := filepath.Join(private, "hot")
	if b, err := os.ReadFile(exe); err != nil || os.WriteFile(hidden, b, 0o755) != nil {
		t.Fatal("copy the fixture: ", err)
	}
	for _, classic := range []bool{false, true} {
		t.Run(fmt.Sprintf("classic=%v", classic), func(t *testing.T) {
			keep := keeper.CapMask(keeper.Caps(classic))
			e := newTestEngine(t, Options{Classic: classic})
			kpid := e.(*engine).keeperClient().PID()
			exe := exe
			if !classic {
				exe = hidden
			}
			h := startHot(t, exe)
			path := exe
			if classic {
				// As reach attach names it.
				path = fmt.Sprintf("/proc/%d/exe", h.pid())
			}
			if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: path, Mode: Count,
				Groups: []Group{{ID: 1, Sites: []Site{work.push}}}}); err != nil {
				t.Fatal(err)
			}
			h.do("call 3")
			if got := total(t, e, h.pid(), 1); got != 3 {
				t.Errorf("counted %d calls, want 3", got)
			}

			tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", kpid))
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range tasks {
				st := procStatus(t, fmt.Sprintf("/proc/%d/task/%s/status", kpid, task.Name()))
				for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
					v, err := strconv.ParseUint(st[set], 16, 64)
					if err != nil {
						t.Fatalf("thread %s: %s %q", task.Name(), set, st[set])
					}
					if v&^keep != 0 {
						t.Errorf("thread %s: %s %#x holds capabilities beyond %#x", task.Name(), set, v, keep)
					}
					if set == "CapEff" && v != keep {
						t.Errorf("thread %s: CapEff %#x, want %#x", task.Name(), v, keep)
					}
				}
				if st["NoNewPrivs"] != "1" {
					t.Errorf("thread %s: NoNewPrivs %q, want 1", task.Name(), st["NoNewPrivs"])
				}
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", kpid))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Trim(string(env), "\x00"); got != keeper.Env+"=1" {
				t.Errorf("the keeper's environment is %q, want %s=1 alone", got, keeper.Env)
			}
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", kpid))
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range fds {
				target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", kpid, fd.Name()))
				if target == leak {
					t.Errorf("the keeper holds descriptor %s, inherited: %s", fd.Name(), target)
				}
				// The Go runtime's own: the cgroup's CPU quota, read for
				// GOMAXPROCS.
				if strings.HasPrefix(target, "/sys/fs/cgroup/") {
					continue
				}
				if !strings.HasPrefix(target, "anon_inode:") && !strings.HasPrefix(target, "socket:") && !strings.HasPrefix(target, "pipe:") && target != os.DevNull {
					t.Errorf("the keeper holds descriptor %s: %s", fd.Name(), target)
				}
			}

			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			waitByte(t, h.pid(), exe, work.push.Offset, work.original)
		})
	}
}

// procStatus reads the "Key:\tvalue" lines of a /proc status file.
func procStatus(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}
