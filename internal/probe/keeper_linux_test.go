package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/probe/keeper"
	"github.com/reach-sca/reach/internal/testprog"
)

// cycleHelperMain arms REACH_PROBE_CYCLE_GROUPS groups on the sites
// REACH_PROBE_CYCLE_SITES (offset:kind,...) of process REACH_PROBE_CYCLE_PID
// running REACH_PROBE_CYCLE_EXE, holds them a few milliseconds, disarms
// them, and again, saying each step on stdout, until it is killed.
func cycleHelperMain() int {
	pid, _ := strconv.Atoi(os.Getenv("REACH_PROBE_CYCLE_PID"))
	groups, _ := strconv.Atoi(os.Getenv("REACH_PROBE_CYCLE_GROUPS"))
	var sites []Site
	for _, f := range strings.Split(os.Getenv("REACH_PROBE_CYCLE_SITES"), ",") {
		off, kind, _ := strings.Cut(f, ":")
		o, _ := strconv.ParseUint(off, 0, 64)
		k, _ := strconv.Atoi(kind)
		sites = append(sites, Site{Offset: o, Kind: SiteKind(k)})
	}
	ctx := context.Background()
	e, err := New(ctx, Options{NoKeeper: os.Getenv("REACH_PROBE_CYCLE_NOKEEPER") != ""})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	go func() {
		for range e.Hits() {
		}
	}()
	spec := ProcessSpec{PID: pid, Path: os.Getenv("REACH_PROBE_CYCLE_EXE"), Mode: Count}
	for i := range groups {
		spec.Groups = append(spec.Groups, Group{ID: uint64(i), Sites: sites})
	}
	fmt.Println("ready")
	for {
		fmt.Println("arming")
		if err := e.Arm(ctx, spec); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("armed")
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		fmt.Println("disarming")
		if err := e.DisarmProcess(ctx, pid); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("disarmed")
	}
}

// TestKeeperSIGKILL kills a process that arms and disarms probes on a busy
// fixture with SIGKILL at random moments, and checks after each kill that
// within a second every probed site holds its original code again and the
// kernel logged no leaked uprobe. REACH_PROBE_KILL_NOKEEPER=1 runs the same
// without a keeper, and only reports the leaks it sees, to show what the
// keeper prevents.
func TestKeeperSIGKILL(t *testing.T) {
	testprog.RequireRoot(t)
	noKeeper := os.Getenv("REACH_PROBE_KILL_NOKEEPER") != ""
	kills := 30
	if s := os.Getenv("REACH_PROBE_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	exe := buildHot(t, testprog.Plain)
	fns := locate(t, exe, "main.work", "main.helper", "main.caller", "main.caller2")
	var sites []Site
	var list []string
	for _, f := range fns {
		s := f.push
		if s.Offset == 0 {
			s = f.entry
		}
		sites = append(sites, s)
		list = append(list, fmt.Sprintf("%#x:%d", s.Offset, s.Kind))
	}
	original := fileBytes(t, exe, sites)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	comm := filepath.Base(self)
	if len(comm) > 15 {
		comm = comm[:15]
	}

	var h *hot
	busy := func() {
		h = startHot(t, exe)
		// Four goroutines call work for ever; the answer never comes.
		if _, err := fmt.Fprintln(h.in, "par 2000000000 4"); err != nil {
			t.Fatal(err)
		}
	}
	busy()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	phases := map[string]int{}
	leaks := 0
	for i := range kills {
		before := kernelLeakLines(t, comm)
		helper := exec.Command(self)
		helper.Env = append(os.Environ(),
			"REACH_PROBE_CYCLE=1",
			fmt.Sprintf("REACH_PROBE_CYCLE_PID=%d", h.pid()),
			"REACH_PROBE_CYCLE_EXE="+exe,
			"REACH_PROBE_CYCLE_SITES="+strings.Join(list, ","),
			"REACH_PROBE_CYCLE_GROUPS=100",
		)
		if noKeeper {
			helper.Env = append(helper.Env, "REACH_PROBE_CYCLE_NOKEEPER=1")
		}
		out, err := helper.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		helper.Stderr = os.Stderr
		if err := helper.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { helper.Process.Kill(); helper.Wait() })
		var mu sync.Mutex
		last := ""
		ready := make(chan struct{})
		lines := make(chan struct{})
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				if last == "" && sc.Text() == "ready" {
					close(ready)
				}
				last = sc.Text()
				mu.Unlock()
			}
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("the helper did not start within 10s")
		}
		time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
		if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		helper.Wait()
		<-lines
		mu.Lock()
		phase := last
		mu.Unlock()
		switch phase {
		case "ready", "arming", "armed", "disarming", "disarmed":
		default:
			t.Fatalf("kill %d: the helper said %q", i, phase)
		}
		phases[phase]++
		what := fmt.Sprintf("kill %d (after %q)", i, phase)

		pristine := waitSites(h.pid(), exe, sites, original, time.Second)
		leaked := kernelLeakLines(t, comm)[len(before):]
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", h.pid())); err != nil || h.cmd.ProcessState != nil {
			t.Fatalf("%s: the fixture died", what)
		}
		if noKeeper {
			if pristine != nil || len(leaked) > 0 {
				leaks++
				t.Logf("%s without a keeper: %v; kernel: %q", what, pristine, leaked)
				h.in.Close()
				h.cmd.Process.Kill()
				h.cmd.Wait()
				busy()
			}
			continue
		}
		if len(leaked) > 0 {
			t.Errorf("%s: the kernel logged %q", what, leaked)
		}
		if pristine != nil {
			t.Fatalf("%s: %v", what, pristine)
		}
	}
	t.Logf("%d kills by the helper's last step: %v; %d left probes (without a keeper: %v)", kills, phases, leaks, noKeeper)
	if !noKeeper && phases["armed"]+phases["disarming"] == 0 && kills >= 10 {
		t.Errorf("no kill landed while probes were armed: %v", phases)
	}
}

// fileBytes reads the first code byte of each site from the file.
func fileBytes(t *testing.T, exe string, sites []Site) []byte {
	t.Helper()
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, len(sites))
	for i, s := range sites {
		if _, err := f.ReadAt(b[i:i+1], int64(s.Offset)); err != nil {
			t.Fatal(err)
		}
		if b[i] == 0xcc {
			t.Fatalf("site at file offset %#x is an int3 in the file", s.Offset)
		}
	}
	return b
}

// waitSites polls the sites' code bytes in the process until they are the
// file's, at most for wait.
func waitSites(pid int, exe string, sites []Site, want []byte, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		var bad []string
		for i, s := range sites {
			b, err := codeByte(pid, exe, s.Offset)
			if err != nil {
				return err
			}
			if b != want[i] {
				bad = append(bad, fmt.Sprintf("%#x: %#x, want %#x", s.Offset, b, want[i]))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sites still patched %s after the kill: %s", wait, strings.Join(bad, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeeperLifetime checks that the keeper holds the links, ignores the
// terminal's signals, and exits when the engine closes.
func TestKeeperLifetime(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	e := newTestEngine(t, Options{})
	k := e.(*engine).keeperClient()
	if k == nil {
		t.Fatal("the engine runs without a keeper")
	}
	kpid := k.PID()
	h := startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: Count,
		Groups: []Group{{ID: 1, Sites: []Site{work.push}}, {ID: 2, Sites: []Site{work.entry}}}}); err != nil {
		t.Fatal(err)
	}
	if n := bpfLinks(t, os.Getpid()); n != 0 {
		t.Errorf("the engine's process holds %d BPF links, want 0: the keeper holds them", n)
	}
	if n := bpfLinks(t, kpid); n != 2 {
		t.Errorf("the keeper holds %d BPF links, want 2", n)
	}
	if sid, _ := unix.Getsid(kpid); sid != kpid {
		t.Errorf("the keeper's session is %d, want its own (%d)", sid, kpid)
	}
	// The keeper may outlive the engine briefly: it must not hold the
	// engine's standard output or error, which a caller may wait on.
	for fd := range 3 {
		mine, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		its, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", kpid, fd))
		if err != nil {
			t.Fatal(err)
		}
		if its == mine && its != os.DevNull {
			t.Errorf("the keeper's descriptor %d is the engine's (%s)", fd, its)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if err := syscall.Kill(kpid, sig); err != nil {
			t.Fatal(err)
		}
	}
	h.do("call 3")
	if got := total(t, e, h.pid(), 1); got != 3 {
		t.Errorf("counted %d calls after signalling the keeper, want 3", got)
	}
	if err := e.Disarm(context.Background(), h.pid(), 1); err != nil {
		t.Fatal(err)
	}
	waitByte(t, h.pid(), exe, work.push.Offset, work.original)
	if n := bpfLinks(t, kpid); n != 1 {
		t.Errorf("the keeper holds %d BPF links after Disarm, want 1", n)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	waitByte(t, h.pid(), exe, work.entry.Offset, fileBytes(t, exe, []Site{work.entry})[0])
	if err := syscall.Kill(kpid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the keeper (process %d) is still there after Close: %v", kpid, err)
	}
}

// TestNoKeeperHook checks that an engine in a program that does not call
// RunKeeperIfRequested works without a keeper.
func TestNoKeeperHook(t *testing.T) {
	exe := buildHot(t, testprog.Plain)
	work := locate(t, exe, "main.work")["main.work"]
	keeper.Hook.Store(false)
	defer keeper.Hook.Store(true)
	e := newTestEngine(t, Options{})
	if e.(*engine).keeperClient() != nil {
		t.Fatal("the engine started a keeper without the hook")
	}
	h := startHot(t, exe)
	if err := e.Arm(context.Background(), ProcessSpec{PID: h.pid(), Path: exe, Mode: OneShot,
		Groups: []Group{{ID: 1, Sites: []Site{work.push}}}}); err != nil {
		t.Fatal(err)
	}
	if n := bpfLinks(t, os.Getpid()); n != 1 {
		t.Errorf("the engine's process holds %d BPF links, want 1", n)
	}
	h.do("call 1")
	waitHit(t, e)
	waitByte(t, h.pid(), exe, work.push.Offset, work.original)
}

// bpfLinks counts the BPF link descriptors of a process.
func bpfLinks(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range ents {
		if l, err := os.Readlink(filepath.Join(dir, ent.Name())); err == nil && l == "anon_inode:bpf_link" {
			n++
		}
	}
	return n
}

// strayKeepers lists the processes other than this one that run this
// test binary: keepers left behind once every test is done.
func strayKeepers() []int {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// kernelLeakLines returns the kernel log's "leaking uprobe" lines of tasks
// named comm.
func kernelLeakLines(t *testing.T, comm string) []string {
	t.Helper()
	lines, err := testprog.KernelLeaks(comm)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}
