package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestRunWithFileCapabilities runs reach the way README's least-privilege
// set-up says: a copy of the binary given CAP_BPF and CAP_PERFMON by
// setcap, run by an ordinary user (testprog.OtherUID) with no capability
// of its own. Such a process is not dumpable, so its /proc/self files
// belong to root: the probe engine must start without reading
// /proc/self/mem (see probe.kernelVersionCode), and run must see the
// fixture program reach language.Parse.
func TestRunWithFileCapabilities(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		setcap, err = exec.LookPath("/usr/sbin/setcap")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("setcap is not installed (Debian: libcap2-bin), and CI=true forbids skipping this test")
		}
		t.Skip("setcap is not installed (Debian: libcap2-bin)")
	}
	dir := testprog.Dir(t, "textyaml")
	src := filepath.Join(dir, "main.go")
	line := sourceLine(t, src, "language.Parse(")

	// Root's directory, readable by all, holds the binaries; the user's
	// own holds the report and the cache.
	shared := testprog.SharedDir(t, 0, 0o755)
	reachCopy, prog := filepath.Join(shared, "reach"), filepath.Join(shared, "textyaml")
	copyFile(t, reachBin(t), reachCopy, 0o755)
	copyFile(t, testprog.Build(t, dir, testprog.Plain), prog, 0o755)
	if out, err := exec.Command(setcap, "cap_bpf,cap_perfmon+ep", reachCopy).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v\n%s", err, out)
	}
	home := testprog.SharedDir(t, testprog.OtherUID, 0o700)
	out := filepath.Join(home, "report.json")

	cmd := exec.Command(reachCopy, "run", "-db", db, "-format", "json", "-o", out, "--", prog)
	cmd.Env = []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "PATH=/usr/bin:/bin"}
	cmd.Dir = home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testprog.OtherUID, Gid: testprog.OtherUID}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("reach run as uid %d with file capabilities: exit %d\n%s", testprog.OtherUID, code, stderr.String())
	}
	if stdout.String() != "en-US\n" {
		t.Errorf("standard output %q, want the program's %q", stdout.String(), "en-US\n")
	}
	r := readReport(t, out)
	_, sym := observedSymbol(t, observedBinary(t, r, prog), textOSV, textPkg, "Parse")
	wantReached(t, sym, "main.main", src, line, 0)
	if strings.Contains(stderr.String(), "/proc/self/mem") {
		t.Errorf("standard error mentions /proc/self/mem:\n%s", stderr.String())
	}
}
