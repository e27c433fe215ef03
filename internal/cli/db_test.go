package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/osv"
)

func TestDBInfo(t *testing.T) {
	db := realDB(t)
	out, stderr, code := reach(t, "db", "-db", db, "info")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	abs, err := filepath.Abs(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"source:", abs, "entries:", "modules:"} {
		if !strings.Contains(out, want) {
			t.Errorf("db info lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "entries:   0\n") {
		t.Errorf("db info counts no entries:\n%s", out)
	}
}

func TestDBShow(t *testing.T) {
	db := realDB(t)
	out, stderr, code := reach(t, "db", "-db", db, "show", "GO-2021-0113")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var e osv.Entry
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("db show output is not one OSV entry: %v\n%s", err, out)
	}
	if e.ID != "GO-2021-0113" || len(e.Affected) == 0 || e.Affected[0].Module.Path != "golang.org/x/text" {
		t.Errorf("db show: %+v", e)
	}

	_, stderr, code = reach(t, "db", "-db", db, "show", "GO-1999-0000")
	if code != 1 || !strings.Contains(stderr, "GO-1999-0000") {
		t.Errorf("unknown ID: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = reach(t, "db", "-db", db, "show", "../../etc/passwd")
	if code == 0 || !strings.Contains(stderr, "../../etc/passwd") {
		t.Errorf("bad ID: exit %d, stderr %q", code, stderr)
	}
}

func TestDBLookup(t *testing.T) {
	db := realDB(t)
	tests := []struct {
		arg     string
		want    []string // IDs that must be listed
		wantNot []string // IDs that must not
		none    bool
	}{
		{arg: "golang.org/x/text@v0.3.5", want: []string{"GO-2021-0113", "GO-2022-1059"}, wantNot: []string{"GO-2020-0015"}},
		{arg: "golang.org/x/text@0.3.5", want: []string{"GO-2021-0113"}},
		{arg: "golang.org/x/text@v0.3.2", want: []string{"GO-2020-0015", "GO-2021-0113"}},
		{arg: "stdlib@go1.21.0", want: []string{"GO-2024-2609"}},
		{arg: "stdlib@go1.21.8", wantNot: []string{"GO-2024-2609"}},
		{arg: "example.com/nothing@v1.0.0", none: true},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			out, stderr, code := reach(t, "db", "-db", db, "lookup", tc.arg)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, id := range tc.want {
				if !strings.Contains(out, id) {
					t.Errorf("lookup %s lacks %s:\n%s", tc.arg, id, out)
				}
			}
			for _, id := range tc.wantNot {
				if strings.Contains(out, id) {
					t.Errorf("lookup %s lists %s, which does not affect it:\n%s", tc.arg, id, out)
				}
			}
			if tc.none != strings.Contains(out, "no known vulnerabilities") {
				t.Errorf("lookup %s: 'no known vulnerabilities' = %v, want %v:\n%s", tc.arg, !tc.none, tc.none, out)
			}
		})
	}
}

// TestDBFlags checks the flags that bound the database: a plain http
// source elsewhere needs -insecure, and -db-timeout stops a stalled server
// with an error that names the source and the flag.
func TestDBFlags(t *testing.T) {
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer stall.Close()
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-db", "http://vuln.example.com", "info"}, 1, []string{"http://vuln.example.com", "use https, or pass -insecure"}},
		{[]string{"-db-timeout", "0s", "info"}, 2, []string{"-db-timeout 0s: must be positive"}},
		{[]string{"-db", stall.URL, "-db-timeout", "300ms", "lookup", "stdlib@go1.21.0"}, 1, []string{stall.URL, "took longer than the 300ms allowed (-db-timeout)"}},
	} {
		start := time.Now()
		_, stderr, code := reach(t, append([]string{"db"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("reach db %q: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("reach db %q: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("reach db %q took %v", tc.args, d)
		}
	}
}

// TestTerminalEscapes checks that what a database or the command line
// holds cannot act on the terminal through reach db or an error message:
// escape sequences, C1 controls and bidirectional overrides are shown
// escaped.
func TestTerminalEscapes(t *testing.T) {
	const evil = "x\x1b[2J\x1b]0;title\x07\rforged\u202egnp.exe\u009b31m end"
	q, _ := json.Marshal(evil)
	dir := t.TempDir()
	files := map[string]string{
		"index/db.json":        `{"modified":"2024-05-01T10:00:00Z"}`,
		"index/modules.json":   `[{"path":"example.com/m","vulns":[{"id":"GO-2099-0001"}]}]`,
		"index/vulns.json":     `[{"id":"GO-2099-0001","modified":"2024-05-01T10:00:00Z"}]`,
		"ID/GO-2099-0001.json": `{"schema_version":"1.3.1","id":"GO-2099-0001","modified":"2024-05-01T10:00:00Z","summary":` + string(q) + `,"details":` + string(q) + `,"aliases":[` + string(q) + `],"affected":[{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
	}
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"db", "-db", dir, "lookup", "example.com/m@v1.0.0"},
		{"db", "-db", dir, "show", "GO-2099-0001"},
		{"db", "-db", dir, "lookup", "example.com/m\x1b[2J@v1.0.0"},
		{"scan", "-db", dir, filepath.Join(dir, "missing"+evil)},
	} {
		out, stderr, code := reach(t, args...)
		t.Logf("reach %q: exit %d\n%s%s", args, code, out, stderr)
		for _, s := range []string{out, stderr} {
			if strings.ContainsAny(s, "\x1b\x07\r\u202e\u009b") {
				t.Errorf("reach %q: raw escape in output: %q", args, s)
			}
		}
		if !strings.Contains(out+stderr, `\x1b[2J`) && !strings.Contains(out, `\u001b[2J`) {
			t.Errorf("reach %q: the escape is not shown escaped", args)
		}
	}
}
