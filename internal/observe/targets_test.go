package observe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

func TestParseTargets(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // Selectors joined by spaces
		err      string // substring of the error
	}{
		{"empty", "", "", ""},
		{"comments", "# nothing\n\n   # more\n", "", ""},
		{"all", "*\n", "*", ""},
		{"id", "GO-2021-0113 # text\n", "GO-2021-0113", ""},
		{"cve and ghsa", "CVE-2021-38561\nGHSA-ppp9-7jff-5vj2\n", "CVE-2021-38561 GHSA-ppp9-7jff-5vj2", ""},
		{"symbol", "golang.org/x/text/language.Parse\n", "golang.org/x/text/language.Parse", ""},
		{"method", "example.com/p.Decoder.Decode", "example.com/p.Decoder.Decode", ""},
		{"stdlib", "net/mail.ParseAddress\nfmt\n", "fmt net/mail.ParseAddress", ""},
		{"gopkg.in method", "gopkg.in/yaml.v2.Decoder.Decode\n", "gopkg.in/yaml.v2.Decoder.Decode", ""},
		{"gopkg.in unexported method", "gopkg.in/yaml.v2.decoder.unmarshal\n", "gopkg.in/yaml.v2.decoder.unmarshal", ""},
		{"gopkg.in package", "gopkg.in/yaml.v2\ngopkg.in/check.v1.Suite\n", "gopkg.in/check.v1.Suite gopkg.in/yaml.v2", ""},
		{"gopkg.in too deep", "gopkg.in/yaml.v2.A.B.C\n", "", "want Func or Type.Method"},
		{"bad id", "GO-21-0113\n", "", "targets:1: \"GO-21-0113\""},
		{"lowercase id", "go-2021-0113\n", "", "targets:1:"},
		{"bad symbol", "*\nexample.com/p.Not-Ident\n", "", "targets:2:"},
		{"too deep", "example.com/p.A.B.C\n", "", "want Func or Type.Method"},
		{"bad path", "example..com/p.F\n", "", "targets:1:"},
		{"trailing dot", "example.com/p.\n", "", "targets:1:"},
		{"space inside", "example.com/p.F G\n", "", "targets:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := ParseTargets(strings.NewReader(tt.in), "targets")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadSelector) {
					t.Fatalf("error %v, want one containing %q and wrapping ErrBadSelector", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ts.String(); got != tt.want {
				t.Errorf("selectors %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTargetSetSelects(t *testing.T) {
	g := &group{osv: "GO-2099-0001", alias: []string{"CVE-2099-1234"}, pkg: "example.com/vuln", name: "List.Push"}
	tests := []struct {
		sel  []string
		want bool
	}{
		{nil, false},
		{[]string{"*"}, true},
		{[]string{"GO-2099-0001"}, true},
		{[]string{"GO-2099-0002"}, false},
		{[]string{"CVE-2099-1234"}, true},
		{[]string{"example.com/vuln.List.Push"}, true},
		{[]string{"example.com/vuln.List"}, false},
		{[]string{"example.com/vuln"}, true},
		{[]string{"example.com/vul"}, false},
	}
	for _, tt := range tests {
		ts, err := NewSelection(tt.sel...)
		if err != nil {
			t.Fatal(err)
		}
		if got := ts.selects(g); got != tt.want {
			t.Errorf("%v selects %s: %v, want %v", tt.sel, g.selector(), got, tt.want)
		}
	}
}

func FuzzParseTargets(f *testing.F) {
	f.Add("*\nGO-2021-0113\ngolang.org/x/text/language.Parse # c\n")
	f.Add("example.com/p.T.M\n\n#\n")
	f.Fuzz(func(t *testing.T, in string) {
		ts, err := ParseTargets(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		// What parses once parses again to the same set.
		again, err := NewSelection(ts.Selectors()...)
		if err != nil {
			t.Fatalf("selectors %q of a parsed set do not parse: %v", ts.Selectors(), err)
		}
		if again.String() != ts.String() {
			t.Fatalf("round trip %q != %q", again.String(), ts.String())
		}
	})
}

// TestSetTargets changes targets while a process runs: a symbol armed
// later is seen, one removed is not, an over-cap set is refused, and a
// targets file with a bad line keeps the old set.
func TestSetTargets(t *testing.T) {
	testprog.RequireRoot(t)
	file, lines := callLines(t)
	path := buildApp(t, testprog.Plain)
	none, _ := NewSelection()
	s := newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "attach"}, Targets: none, MaxSites: 64})
	ctx := context.Background()

	// Select nothing, then the file selects Attach by ID; a bad line then
	// keeps it; over the cap is refused.
	tf := filepath.Join(t.TempDir(), "targets")
	if err := os.WriteFile(tf, []byte("# nothing yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.WatchTargets(ctx, tf, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, path, "wait")
	a.expect("ready")
	if err := s.Add(ctx, a.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	armed := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.procs[a.cmd.Process.Pid].armed)
	}
	if n := armed(); n != 0 {
		t.Fatalf("%d groups armed with no targets", n)
	}
	if err := os.WriteFile(tf, []byte("GO-2099-0002 # Attach\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Targets().String() == "GO-2099-0002" })
	if n := armed(); n != 1 {
		t.Fatalf("%d groups armed for GO-2099-0002, want 1", n)
	}
	if err := os.WriteFile(tf, []byte("GO-2099-0002\nexample.com/vuln.Bad-Name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The watcher reads the bad file when it polls next: wait for its note
	// (a fixed sleep was too short under load), then check the old set stays.
	noted := func() bool {
		r, _ := s.Report(ctx)
		return strings.Contains(strings.Join(r.Notes, "\n"), tf+":2:")
	}
	waitFor(t, noted)
	if got := s.Targets().String(); got != "GO-2099-0002" {
		t.Fatalf("targets %q after a bad file, want the old GO-2099-0002", got)
	}
	all := SelectAll()
	s.opts.MaxSites = 1
	if err := s.SetTargets(ctx, all); !errors.Is(err, ErrTooManySites) {
		t.Fatalf("SetTargets over the cap: %v, want ErrTooManySites", err)
	}
	s.opts.MaxSites = 64
	if got := s.Targets().String(); got != "GO-2099-0002" {
		t.Fatalf("targets %q after a refused set, want the old GO-2099-0002", got)
	}

	a.in.Write([]byte("go\n"))
	a.expect("done")
	// Remove Attach (and Never, never called) before the app ends: no probe
	// remains armed.
	direct, _ := NewSelection("example.com/vuln.Never")
	if err := s.SetTargets(ctx, direct); err != nil {
		t.Fatal(err)
	}
	if n := armed(); n != 1 {
		t.Fatalf("%d groups armed for Never, want 1", n)
	}
	a.wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sym := symbol(t, r, path, "GO-2099-0002", "Attach")
	want := report.Callsite{Function: "main.wait", File: file, Line: lines["after"], Hits: 1}
	if sym.Status != report.Reached || len(sym.Callsites) != 1 || *sym.Callsites[0] != want {
		t.Fatalf("Attach: %s, callsites %+v; want reached from %+v", sym.Status, sym.Callsites, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
