package cli

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/testprog"
)

// Capability numbers from linux/capability.h.
const (
	capDACReadSearch = 2
	capPerfmon       = 38
	capBPF           = 39
)

// capReach returns a copy of the reach binary that holds caps as file
// capabilities (permitted and effective), and a copy of the lifecycle
// fixture, in a directory every user may read.
func capReach(t *testing.T, caps ...int) (bin, prog string) {
	t.Helper()
	dir := testprog.SharedDir(t, 0, 0o755)
	bin, prog = filepath.Join(dir, "reach"), filepath.Join(dir, "lifecycle")
	copyFile(t, reachBin(t), bin, 0o755)
	copyFile(t, testprog.Build(t, testprog.Dir(t, "lifecycle"), testprog.Plain), prog, 0o755)
	var permitted uint64
	for _, c := range caps {
		permitted |= 1 << c
	}
	// struct vfs_cap_data, revision 2, effective.
	var data bytes.Buffer
	for _, v := range []uint32{0x02000000 | 1, uint32(permitted), 0, uint32(permitted >> 32), 0} {
		binary.Write(&data, binary.LittleEndian, v)
	}
	if err := unix.Setxattr(bin, "security.capability", data.Bytes(), 0); err != nil {
		testprog.Skip(t, fmt.Sprintf("no file capabilities on this file system: %v", err))
	}
	return bin, prog
}

// runAsOther runs bin with args as testprog.OtherUID.
func runAsOther(t *testing.T, bin string, args ...string) result {
	t.Helper()
	home := testprog.SharedDir(t, testprog.OtherUID, 0o700)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testprog.OtherUID, Gid: testprog.OtherUID}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// TestRunWithFileCapabilities runs reach as README's least privilege says:
// an ordinary user, the binary given CAP_BPF and CAP_PERFMON as file
// capabilities and nothing else. Such a process is not dumpable, so its
// /proc/self/mem is root's; cilium/ebpf reads the kernel's version through
// it, and reach failed before a probe was armed ("open /proc/self/mem:
// permission denied") unless it could also read any file on the machine.
func TestRunWithFileCapabilities(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin, prog := capReach(t, capBPF, capPerfmon)
	res := runAsOther(t, bin, "run", "-db", db, "--", prog, "count", "2")
	// The report goes to standard error, after the program's "2".
	if res.code != 0 || res.stdout != "2\n" ||
		!strings.Contains(res.stderr, "reach run: ") || strings.Contains(res.stderr, "reach run: 0 reached") {
		t.Fatalf("reach run as user %d with file capabilities: exit %d, want 0 with symbols reached\nstdout:\n%s\nstderr:\n%s", testprog.OtherUID, res.code, res.stdout, res.stderr)
	}
}

// TestFileCapabilitiesReadOnlyWhatTheUserMay gives reach CAP_DAC_READ_SEARCH
// too, as README once suggested: the user running it must still not read
// through it what they could not read themselves (a root-only targets
// file was quoted in the error; a root-only binary or database read).
func TestFileCapabilitiesReadOnlyWhatTheUserMay(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin, prog := capReach(t, capBPF, capPerfmon, capDACReadSearch)
	secret := secretFile(t)
	private := filepath.Join(t.TempDir(), "lifecycle") // root's, mode 0700
	copyFile(t, prog, private, 0o700)
	for _, args := range [][]string{
		{"run", "-db", db, "-targets", secret, "--", prog, "count", "1"},
		{"scan", "-db", db, private},
	} {
		res := runAsOther(t, bin, args...)
		noSecret(t, "reach "+args[0], res.stdout+res.stderr)
		if res.code != 1 || !strings.Contains(res.stderr, fmt.Sprintf("user %d, who runs reach, may not read it", testprog.OtherUID)) {
			t.Errorf("reach %s as user %d: exit %d, want 1 naming the file the user may not read\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), testprog.OtherUID, res.code, res.stdout, res.stderr)
		}
	}
}
