package reliability

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestMalformedDB runs reach scan on the stress binary with a directory
// database whose entry GO-2099-0101 (or index) is damaged in ways the
// vulndb package's own tests do not cover end to end: reach must not
// crash, must name the damaged file, and must still report the intact
// entry GO-2099-0102 when it reports at all.
func TestMalformedDB(t *testing.T) {
	reach := buildReach(t)
	bin := buildStress(t, testprog.Plain)
	const entry = "ID/GO-2099-0101.json"
	symbols := func(n int) string {
		return `{"schema_version":"1.3.1","id":"GO-2099-0101","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"name":"example.com/hazard","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}],"ecosystem_specific":{"imports":[{"path":"example.com/hazard","symbols":[` +
			strings.Repeat(`"Digest",`, n) + `"Mix"]}]}}]}`
	}
	withAffected := func(aff string) string {
		return `{"schema_version":"1.3.1","id":"GO-2099-0101","modified":"2024-01-01T00:00:00Z","affected":[` + aff + `]}`
	}
	tests := []struct {
		name, file, content string
		// dropped: the entry cannot be used, a warning or error names it
		dropped bool
	}{
		{"not JSON", entry, "<html>", true},
		{"JSON null", entry, "null", true},
		{"empty file", entry, "", true},
		{"truncated", entry, `{"id":"GO-2099-0101","affected":[{"package":`, true},
		{"other ID inside", entry, `{"id":"GO-2099-0999","modified":"2024-01-01T00:00:00Z","affected":[]}`, true},
		{"ID with a path", entry, `{"id":"../../GO-2099-0101","modified":"2024-01-01T00:00:00Z"}`, true},
		{"garbage version", entry, withAffected(`{"package":{"name":"example.com/hazard","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"zero"},{"fixed":"1.0.1;rm -rf /"}]}]}`), false},
		{"no ranges", entry, withAffected(`{"package":{"name":"example.com/hazard","ecosystem":"Go"}}`), false},
		{"odd symbols", entry, withAffected(`{"package":{"name":"example.com/hazard","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}],"ecosystem_specific":{"imports":[{"path":"example.com/hazard","symbols":["","../../x","Digest\u0000","(*T).M[int]","` + strings.Repeat("A", 100000) + `"]}]}}`), false},
		{"traversing package", entry, withAffected(`{"package":{"name":"example.com/hazard/../../x","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}`), false},
		// 0.9 MB, under the 1 MiB limit for an entry (real ones are 8 KB
		// at most); 1.8 MB is over it and refused.
		{"100000 symbols", entry, symbols(100000), false},
		{"200000 symbols", entry, symbols(200000), true},
		{"deep nesting", entry, strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000), true},
		{"missing entry file", entry, "", true},
		// Reading a FIFO would wait for a writer forever.
		{"FIFO for an entry", entry, "", true},
		{"FIFO for the index", "index/modules.json", "", true},
		// An indexed entry that cannot be read fails the scan, as an
		// HTTP 404 for it does: the database is inconsistent.
		{"modules index names a missing ID", "index/modules.json", `[{"path":"example.com/hazard","vulns":[{"id":"GO-2099-0101"},{"id":"GO-2099-0102"},{"id":"GO-2099-9999"}]}]`, true},
		{"modules index with a traversing ID", "index/modules.json", `[{"path":"example.com/hazard","vulns":[{"id":"../../../etc/passwd"},{"id":"GO-2099-0102"}]}]`, true},
		{"db.json with a bad date", "index/db.json", `{"modified":"yesterday"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := t.TempDir()
			if err := os.CopyFS(db, os.DirFS(dbDir(t))); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(db, filepath.FromSlash(tt.file))
			if tt.name == "missing entry file" {
				os.Remove(target)
			} else if strings.HasPrefix(tt.name, "FIFO") {
				os.Remove(target)
				testprog.Mkfifo(t, target)
			} else if err := os.WriteFile(target, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(reach, "scan", "-db", db, "-format", "json", bin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			_, err := watchdog(60*time.Second, func() (struct{}, error) { return struct{}{}, cmd.Run() })
			code := exitCode(err)
			t.Logf("exit %d in %s; stderr: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
			if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("reach scan crashed:\n%s", stderr.String())
			}
			switch code {
			case 1:
				if !strings.Contains(stderr.String(), filepath.Base(tt.file)) && !strings.Contains(stderr.String(), "GO-2099-0101") && !strings.Contains(stderr.String(), "GO-2099-9999") {
					t.Errorf("error names neither %s nor the entry:\n%s", tt.file, stderr.String())
				}
				if !tt.dropped {
					t.Errorf("exit 1, want the scan to go on with the entry")
				}
			case 3:
				r, err := report.ReadJSON(&stdout)
				if err != nil {
					t.Fatalf("report: %v", err)
				}
				found := map[string]bool{}
				for _, b := range r.Binaries {
					for _, f := range b.Findings {
						found[f.OSV] = true
					}
				}
				if !found["GO-2099-0102"] {
					t.Errorf("the intact entry GO-2099-0102 is not reported: %v", found)
				}
				if tt.dropped && !found["GO-2099-0101"] && !strings.Contains(stderr.String()+strings.Join(r.Notes, "\n"), "GO-2099-0101") {
					t.Errorf("GO-2099-0101 dropped without a warning naming it:\n%s", stderr.String())
				}
			default:
				t.Fatalf("exit code %d (%v), want 1 or 3\n%s", code, err, stderr.String())
			}
		})
	}
	figure(t, "malformed_db_cases", len(tests))
	figure(t, "malformed_inputs", len(tests))
}
