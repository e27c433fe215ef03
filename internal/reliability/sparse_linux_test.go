package reliability

import (
	"bytes"
	"github.com/reach-sca/reach/internal/testprog"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSparseBinary runs reach scan on a 1 GiB sparse copy of the stress
// binary (a few megabytes on disk) whose pclntab claims 20 million
// functions: believing the headers took 2.4 GB. reach must refuse it
// within seconds, naming the file, and its peak RSS stay under 100 MiB.
func TestSparseBinary(t *testing.T) {
	reach := buildReach(t)
	file := testprog.SparsePclntab(t, buildStress(t, testprog.Plain), 1<<30, 20_000_000)
	cmd := exec.Command(reach, "scan", "-db", dbDir(t), file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	_, err := watchdog(60*time.Second, func() (struct{}, error) { return struct{}{}, cmd.Run() })
	elapsed := time.Since(start)
	if code := exitCode(err); code != 1 {
		t.Fatalf("reach scan: exit %d (%v), want 1\n%s", code, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), file) || !strings.Contains(stderr.String(), "sparse") {
		t.Errorf("error does not name the file and its holes:\n%s", stderr.String())
	}
	if elapsed > 10*time.Second {
		t.Errorf("refusing took %v", elapsed)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage")
	}
	t.Logf("exit 1 in %v, peak RSS %d MiB: %s", elapsed.Round(time.Millisecond), ru.Maxrss>>10, strings.TrimSpace(stderr.String()))
	if ru.Maxrss > 100<<10 { // KiB
		t.Errorf("peak RSS %d MiB, want under 100 MiB", ru.Maxrss>>10)
	}
}
