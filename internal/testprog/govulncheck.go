package testprog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Govulncheck returns the path of govulncheck, the peer that reach's
// static findings are compared with: on $PATH or in $GOPATH/bin. Without
// it the test is skipped, or fails under CI=true (see Skip).
func Govulncheck(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("govulncheck"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(bytes.TrimSpace(out)), "bin", "govulncheck")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Skip(tb, "govulncheck not found: go install golang.org/x/vuln/cmd/govulncheck@v1.8.0 to compare with it")
	return ""
}

// GovulncheckFinding is one finding of govulncheck's JSON stream.
type GovulncheckFinding struct {
	OSV   string `json:"osv"`
	Trace []struct {
		Module   string `json:"module"`
		Package  string `json:"package"`
		Function string `json:"function"`
		Receiver string `json:"receiver"`
	} `json:"trace"`
}

// GovulncheckBinary runs govulncheck (see Govulncheck) in binary mode on
// bin against the database directory db, and returns its findings.
func GovulncheckBinary(tb testing.TB, db, bin string) []GovulncheckFinding {
	tb.Helper()
	gv := Govulncheck(tb)
	abs, err := filepath.Abs(db)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(gv, "-mode=binary", "-db", "file://"+abs, "-format", "json", bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("govulncheck on %s: %v\n%s", bin, err, stderr.String())
	}
	var findings []GovulncheckFinding
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			Finding *GovulncheckFinding `json:"finding"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatalf("decode govulncheck output on %s: %v", bin, err)
		}
		if msg.Finding != nil {
			findings = append(findings, *msg.Finding)
		}
	}
	return findings
}
