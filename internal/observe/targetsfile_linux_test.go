package observe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestReadTargetsFileTrust checks which targets files are read: a regular
// file with one name that root or this user owns, and that keeps the
// owner it was first read with. The others are refused with a message
// saying why, and nothing of what they hold.
func TestReadTargetsFileTrust(t *testing.T) {
	testprog.RequireRoot(t)
	dir := testprog.SharedDir(t, testprog.OtherUID, 0o755)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("SECRET-LINE\n"), 0o600)
	own := filepath.Join(dir, "own")
	os.WriteFile(own, []byte("GO-2021-0113\n"), 0o644)
	hard := filepath.Join(dir, "hard")
	if err := os.Link(own, hard); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(dir, "single")
	os.WriteFile(single, []byte("GO-2021-0113\n"), 0o644)
	theirs, link, fifo := filepath.Join(dir, "theirs"), filepath.Join(dir, "link"), filepath.Join(dir, "fifo")
	err := testprog.AsOther(t, func() error {
		if err := os.WriteFile(theirs, []byte("GO-2021-0113\n"), 0o644); err != nil {
			return err
		}
		if err := os.Symlink(secret, link); err != nil {
			return err
		}
		return unix.Mkfifo(fifo, 0o666)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		owner      int
		want       string // "" when read
	}{
		{"own file", single, -1, ""},
		{"same owner again", single, 0, ""},
		{"owner changed", single, testprog.OtherUID, "changed owner from user 54321 to user 0"},
		{"other user's", theirs, -1, "owned by user 54321"},
		{"link", link, -1, "symbolic link"},
		{"FIFO", fifo, -1, "not a regular file (a FIFO)"},
		{"hard link", hard, -1, "has 2 names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _, owner, err := readTargetsFile(tc.path, tc.owner)
			if tc.want == "" {
				if err != nil || string(data) != "GO-2021-0113\n" || owner != 0 {
					t.Fatalf("read %q, owner %d, %v", data, owner, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("err = %v, want one naming the file and saying %q", err, tc.want)
			}
			if data != nil || strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("read %q from a refused file: %v", data, err)
			}
		})
	}
}

// TestParseTargetsQuotesAPrefix checks that an error quotes at most
// maxQuoted bytes of a bad line, escaped.
func TestParseTargetsQuotesAPrefix(t *testing.T) {
	// Past its first maxQuoted bytes, each line holds SECRET.
	pad := strings.Repeat("x", maxQuoted)
	for _, line := range []string{
		"root:$y$j9T$" + pad + "SECRET:19000:0:99999:7:::",
		"example.com/p." + pad + "-SECRET",
		"example.com/p/" + pad + "/a b/SECRET.F",
		"example.com/p.A.B." + pad + "SECRET",
		"GO-2021-" + pad + "SECRET",
		"example.com/p.\x1b[2J\x1b[H" + pad + "SECRET",
	} {
		_, err := ParseTargets(strings.NewReader(line+"\n"), "targets")
		if err == nil {
			t.Fatalf("%q accepted", line)
		}
		msg := err.Error()
		if strings.Contains(msg, "SECRET") || strings.ContainsRune(msg, '\x1b') {
			t.Errorf("the error quotes too much of %q:\n%s", line, msg)
		}
		if !strings.Contains(msg, "targets:1:") || !strings.Contains(msg, "...") {
			t.Errorf("the error should name targets:1 and mark the cut quote: %s", msg)
		}
	}
}
