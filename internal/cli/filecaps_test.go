package cli

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestRunWithFileCapabilities runs reach as README's least privilege says:
// an ordinary user, the binary given CAP_BPF and CAP_PERFMON as file
// capabilities and nothing else. Such a process is not dumpable, so its
// /proc/self/mem is root's; cilium/ebpf reads the kernel's version through
// it, and reach failed before a probe was armed ("open /proc/self/mem:
// permission denied") unless it could also read any file on the machine.
func TestRunWithFileCapabilities(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.SharedDir(t, 0, 0o755)
	copyTo := func(src, name string) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bin := copyTo(reachBin(t), "reach")
	prog := copyTo(testprog.Build(t, testprog.Dir(t, "lifecycle"), testprog.Plain), "lifecycle")
	// struct vfs_cap_data, revision 2, effective: CAP_PERFMON (38) and
	// CAP_BPF (39) permitted, in the upper word.
	var caps bytes.Buffer
	for _, v := range []uint32{0x02000000 | 1, 0, 0, 1<<(38-32) | 1<<(39-32), 0} {
		binary.Write(&caps, binary.LittleEndian, v)
	}
	if err := unix.Setxattr(bin, "security.capability", caps.Bytes(), 0); err != nil {
		t.Skip("no file capabilities on this file system:", err)
	}
	home := testprog.SharedDir(t, testprog.OtherUID, 0o700)
	cmd := exec.Command(bin, "run", "-db", db, "--", prog, "count", "2")
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testprog.OtherUID, Gid: testprog.OtherUID}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatal(err)
	}
	// The report goes to standard error, after the program's "2".
	if code := cmd.ProcessState.ExitCode(); code != 0 || out.String() != "2\n" ||
		!strings.Contains(errb.String(), "reach run: ") || strings.Contains(errb.String(), "reach run: 0 reached") {
		t.Fatalf("reach run as user %d with file capabilities: exit %d, want 0 with symbols reached\nstdout:\n%s\nstderr:\n%s", testprog.OtherUID, code, out.String(), errb.String())
	}
}
