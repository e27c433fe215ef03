//go:build unix

package vulndb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDirFIFO plants a FIFO in a database directory, where reading it
// would block until a writer comes, that is forever: reach must refuse it
// at once, naming it.
func TestDirFIFO(t *testing.T) {
	for _, name := range []string{"index/db.json", "index/modules.json", "ID/GO-2099-0001.json"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(fixtureDir)); err != nil {
				t.Fatal(err)
			}
			fifo := filepath.Join(dir, filepath.FromSlash(name))
			os.Remove(fifo)
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := New(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := c.ByModules(context.Background(), []string{"example.com/a"})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file (a FIFO)") {
					t.Errorf("error = %v, want one naming the FIFO %s", err, fifo)
				}
				t.Log(err)
			case <-time.After(5 * time.Second):
				// Unblock the reader so that the test can end.
				if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					f.Close()
				}
				t.Fatal("ByModules blocked on the FIFO")
			}
		})
	}
}
