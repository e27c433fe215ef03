package reliability

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestKilledReach kills `reach attach` with SIGKILL at random moments
// (while it loads and arms, while armed with hits arriving, while it
// disarms and writes its report) and checks each time that the observed
// programs keep running and compute what they compute unobserved, that
// every probe site holds its original code again, that no uprobe is left
// in uprobe_events, and that a report file, when there is one, is
// complete. REACH_RELIABILITY_KILLS sets the number of kills.
//
// A process killed with SIGKILL while it works on uprobe links can make the
// kernel fail to remove breakpoints ("uprobe: ... failed to unregister,
// leaking uprobe"), which would leave int3 in the program until it exits.
// reach's links are created and closed by its keeper process (see
// internal/probe), which is not killed with it: any site left patched
// fails the test.
func TestKilledReach(t *testing.T) {
	testprog.RequireRoot(t)
	kills := envInt(t, "REACH_RELIABILITY_KILLS", 20)
	reach := buildReach(t)
	variants := []testprog.Variant{testprog.Plain, testprog.StrippedPIE}
	paths := make([]string, len(variants))
	procs := make([]*stressProc, len(variants))
	sites := make([][]probeSite, len(variants))
	refs := make([]string, len(variants))
	for j, v := range variants {
		paths[j] = buildStress(t, v)
		refs[j] = referenceChecksum(t, paths[j])
		sites[j] = probeSites(t, paths[j])
		procs[j] = startStress(t, paths[j])
	}
	targets := func() (map[string][]int, []string) {
		pids := map[string][]int{}
		var args []string
		for j, p := range procs {
			pids[paths[j]] = []int{p.pid()}
			args = append(args, strconv.Itoa(p.pid()))
		}
		return pids, args
	}
	rounds := 0
	stop := func(j int) {
		sums := procs[j].stop(2 * time.Minute)
		for k, s := range sums {
			if s != refs[j] {
				t.Fatalf("%s round %d: checksum %s, want %s as unobserved", paths[j], k+1, s, refs[j])
			}
		}
		rounds += len(sums)
	}
	events := uprobeEvents()
	dir := t.TempDir()

	// An unkilled run says how long a whole attach takes.
	pids, args := targets()
	out := filepath.Join(dir, "whole.json")
	start := time.Now()
	ra := startReach(t, reach, out, false, args)
	if err := ra.wait(); exitCode(err) != 3 {
		t.Fatalf("reach attach: %v, want exit status 3 (reached findings)\n%s", err, ra.stderr())
	}
	whole := time.Since(start)
	if _, err := checkReportFile(out, pids); err != nil {
		t.Fatalf("report of an unkilled attach: %v", err)
	}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("a whole attach takes %s; kill delays drawn from [0, %s), seed %d", whole.Round(time.Millisecond), (whole * 5 / 4).Round(time.Millisecond), seed)
	phases := map[string]int{}
	reports, counted, leaks, repaired, tempLeft := 1, 0, 0, 0, 0
	for i := 0; i < kills; i++ {
		pids, args := targets()
		out := filepath.Join(dir, fmt.Sprintf("kill%d.json", i))
		delay := time.Duration(rng.Int64N(int64(whole * 5 / 4)))
		warned := kernelLeaks()
		ra := startReach(t, reach, out, i%2 == 1, args)
		time.Sleep(delay)
		armed := 0
		for j, p := range procs {
			armed += armedSites(t, p.pid(), paths[j], sites[j])
		}
		killed := ra.cmd.Process.Signal(syscall.SIGKILL) == nil
		err := ra.wait()
		phase := ra.phase(armed)
		if !killed || !isKilled(err) {
			phase = "finished"
			if exitCode(err) != 3 {
				t.Fatalf("kill %d: reach finished before the kill with %v, want exit status 3\n%s", i, err, ra.stderr())
			}
		}
		phases[phase]++
		what := fmt.Sprintf("kill %d (%s after %s)", i, phase, delay)
		for j, p := range procs {
			if !p.alive() {
				t.Fatalf("%s: stress process %d died", what, p.pid())
			}
			err := waitPristine(p.pid(), paths[j], sites[j], 5*time.Second)
			if err == nil {
				continue
			}
			// reach's links live in its keeper process, which closes them
			// when reach dies: a kill must leave no breakpoint behind.
			t.Fatalf("%s: %v (the kernel logged %d new \"leaking uprobe\" lines)", what, err, kernelLeaks()-warned)
		}
		if after := uprobeEvents(); after != events {
			t.Fatalf("%s: uprobe_events changed:\nbefore: %s\nafter: %s", what, events, after)
		}
		// -o is written whole or not at all.
		if _, err := os.Stat(out); err == nil {
			st, err := checkReportFile(out, pids)
			if err != nil {
				t.Fatalf("%s: report file: %v", what, err)
			}
			reports++
			counted += st.counted
		} else if phase == "finished" {
			t.Fatalf("kill %d: reach finished but wrote no report: %v", i, err)
		}
		// A kill while the report is written leaves its temporary file
		// (the report itself is whole or absent): count them.
		if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
			t.Logf("%s: temporary files left next to the report: %v", what, leftovers)
			tempLeft += len(leftovers)
			for _, l := range leftovers {
				os.Remove(l)
			}
		}
	}
	for j := range procs {
		stop(j)
	}
	t.Logf("%d kills of reach attach by phase: %v; %d complete reports written (%d reached symbols known only from the counters); %d rounds, every checksum as unobserved; %d processes left with kernel-leaked uprobes, %d of them cleaned by a later attach; %d temporary report files left", kills, phases, reports, counted, rounds, leaks, repaired, tempLeft)
	if phases["armed"] == 0 && kills >= 10 {
		t.Errorf("no kill landed while probes were armed: %v", phases)
	}
	figure(t, "kills", kills)
	for _, ph := range []string{"arming", "armed", "reporting", "finished"} {
		figure(t, "kill_phase_"+ph, phases[ph])
	}
	figure(t, "kill_reports", reports)
	figure(t, "kill_kernel_leaks", leaks)
	figure(t, "kill_kernel_leaks_repaired", repaired)
	figure(t, "kill_temp_files_left", tempLeft)
}

// reachAttach is a running `reach attach`.
type reachAttach struct {
	cmd      *exec.Cmd
	lines    chan string
	done     chan struct{}
	log      []string
	observed bool
}

func startReach(t testing.TB, reach, out string, count bool, pids []string) *reachAttach {
	t.Helper()
	args := []string{"attach", "-db", dbDir(t), "-format", "json", "-o", out, "-for", "300ms"}
	if count {
		args = append(args, "-count")
	}
	cmd := exec.Command(reach, append(args, pids...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	ra := &reachAttach{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			ra.log = append(ra.log, sc.Text())
			if strings.Contains(sc.Text(), "observing") {
				ra.observed = true
			}
		}
		close(ra.done)
	}()
	return ra
}

// wait waits for reach to exit, at most 30s.
func (ra *reachAttach) wait() error {
	ch := make(chan error, 1)
	go func() {
		<-ra.done
		ch <- ra.cmd.Wait()
	}()
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		ra.cmd.Process.Kill()
		<-ch // the reader is done with ra.log and ra.observed
		return errors.New("reach attach did not exit within 30s")
	}
}

func (ra *reachAttach) stderr() string { return strings.Join(ra.log, "\n") }

// phase names what reach was doing when it was killed: loading and arming
// (no "observing" message yet), armed (int3 at probe sites), or past that
// (probes removed, report being written).
func (ra *reachAttach) phase(armed int) string {
	switch {
	case armed > 0:
		return "armed"
	case !ra.observed:
		return "arming"
	}
	return "reporting"
}

func isKilled(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled() && ws.Signal() == syscall.SIGKILL
		}
	}
	return false
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func checkReportFile(path string, pids map[string][]int) (reportStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return reportStats{}, err
	}
	defer f.Close()
	return checkReport(f, pids)
}
