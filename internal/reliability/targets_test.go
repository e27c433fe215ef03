package reliability

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// badTargets are targets files reach must refuse, with what the refusal
// must say besides the file's name.
func badTargets(dir string) []struct {
	name, content string
	want          []string
} {
	return []struct {
		name, content string
		want          []string
	}{
		{"bad symbol", "example.com/hazard.Bad-Name\n", []string{":1:", "not a Go identifier"}},
		{"path traversal", "../../x\n", []string{":1:", "bad target selector"}},
		{"ID with a path", "GO-2099-0101/../../x\n", []string{":1:", "an OSV ID looks like"}},
		{"lowercase ID traversal", "go-2099-0101/../../etc/passwd\n", []string{":1:", "bad target selector"}},
		{"absolute path", "/etc/passwd\n", []string{":1:", "bad target selector"}},
		{"second line bad", "GO-2099-0101\n\n# ok so far\nexample.com/hazard.Leaf.\n", []string{":4:"}},
		{"too deep", "example.com/hazard.A.B.C\n", []string{":1:", "want Func or Type.Method"}},
		{"NUL byte", "GO-2099-0101\x00\n", []string{":1:"}},
		{"escape sequence", "example.com/hazard.Leaf\x1b[31m\n", []string{":1:"}},
		{"invalid UTF-8", "example.com/hazard.\xff\xfe\n", []string{":1:"}},
		{"line over 64 KiB", strings.Repeat("a", 70000) + "\n", []string{"too long"}},
		{"over 1 MiB", strings.Repeat("GO-2099-0101\n", 90000), []string{"larger than 1048576 bytes"}},
		{"dot-dot package", "example.com/../hazard.Leaf\n", []string{":1:"}},
	}
}

// TestTargetsFileRefused starts reach attach with targets files that must
// be refused: each fails with a message naming the file (and line), writes
// no report and arms nothing.
func TestTargetsFileRefused(t *testing.T) {
	testprog.RequireRoot(t)
	reach := buildReach(t)
	path := buildStress(t, testprog.Plain)
	sites := probeSites(t, path)
	p := startStress(t, path)
	dir := t.TempDir()
	cases := badTargets(dir)
	type extra struct{ name, file string }
	extras := []extra{{"missing file", filepath.Join(dir, "nonexistent")}, {"directory", dir}}
	n := 0
	run := func(t *testing.T, file string, want []string) {
		n++
		cmd := exec.Command(reach, "attach", "-db", dbDir(t), "-format", "json", "-for", "300ms", "-targets", file, strconv.Itoa(p.pid()))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := exitCode(err); code != 1 {
			t.Fatalf("exit code %d, want 1\nstderr:\n%s", code, stderr.String())
		}
		for _, w := range append(want, "-targets", file) {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
			}
		}
		if stdout.Len() > 0 {
			t.Errorf("a refused targets file wrote a report:\n%s", stdout.String())
		}
		checkPristine(t, p.pid(), path, sites, "after a refused targets file")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "targets")
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, file, tc.want)
		})
	}
	for _, tc := range extras {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.file, nil) })
	}

	// Over -max-sites: the process is reported with nothing armed; a
	// narrower file under the same cap is observed.
	all := filepath.Join(dir, "all")
	os.WriteFile(all, []byte("*\n"), 0o644)
	leaf := filepath.Join(dir, "leaf")
	os.WriteFile(leaf, []byte("example.com/hazard.Leaf\n"), 0o644)
	for _, tc := range []struct {
		name, file string
		code       int
		want       string
		reached    []string
	}{
		{"over the cap", all, 1, "more than the cap of 3", nil},
		{"under the cap", leaf, 3, "observing 1 process", []string{"Leaf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n++
			cmd := exec.Command(reach, "attach", "-db", dbDir(t), "-format", "json", "-for", "500ms", "-max-sites", "3", "-targets", tc.file, strconv.Itoa(p.pid()))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if code := exitCode(err); code != tc.code {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			r, err := report.ReadJSON(bytes.NewReader(stdout.Bytes()))
			if err != nil {
				t.Fatalf("report: %v\n%s", err, stdout.String())
			}
			if _, err := checkReport(bytes.NewReader(stdout.Bytes()), map[string][]int{path: {p.pid()}}); err != nil {
				t.Fatalf("report: %v", err)
			}
			var reached []string
			for _, f := range r.Binaries[0].Findings {
				for _, s := range f.Symbols {
					if s.Status == report.Reached {
						reached = append(reached, s.Name)
					}
				}
			}
			if strings.Join(reached, " ") != strings.Join(tc.reached, " ") {
				t.Errorf("reached %v, want %v", reached, tc.reached)
			}
			checkPristine(t, p.pid(), path, sites, tc.name)
		})
	}
	if !p.alive() {
		t.Fatal("the observed process died")
	}
	figure(t, "targets_cli_cases", n)
	figure(t, "malformed_inputs", n)
}

// TestTargetsFileChanged rewrites a watched targets file with bad
// contents while a process is observed in count mode: each one is
// refused with a note, the old targets stay, and exactly the old set of
// probe sites stays armed (read from the process's code); a good change
// then moves the probes.
func TestTargetsFileChanged(t *testing.T) {
	testprog.RequireRoot(t)
	path := buildStress(t, testprog.Plain)
	sites := probeSites(t, path)
	bySymbol := func(names ...string) (in, out []probeSite) {
		for _, s := range sites {
			hit := false
			for _, n := range names {
				hit = hit || s.symbol == n
			}
			if hit {
				in = append(in, s)
			} else {
				out = append(out, s)
			}
		}
		return in, out
	}
	digest, rest := bySymbol("Digest", "Mix")
	p := startStress(t, path)
	dir := t.TempDir()
	file := filepath.Join(dir, "targets")
	if err := os.WriteFile(file, []byte("GO-2099-0101\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	none, _ := observe.NewSelection()
	ctx := context.Background()
	s, err := observe.New(ctx, fixtureDB(t), observe.Options{
		Mode:     probe.Count,
		Targets:  none,
		MaxSites: len(digest),
		Report:   report.Report{Mode: "attach"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WatchTargets(ctx, file, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, p.pid()); err != nil {
		t.Fatal(err)
	}
	expectArmed := func(what string, on, off []probeSite) {
		t.Helper()
		if n := armedSites(t, p.pid(), path, on); n != len(on) {
			t.Fatalf("%s: %d of %d sites armed, want all", what, n, len(on))
		}
		if n := armedSites(t, p.pid(), path, off); n != 0 {
			t.Fatalf("%s: %d sites armed that the targets do not select", what, n)
		}
	}
	expectArmed("GO-2099-0101", digest, rest)

	cases := append(badTargets(dir), struct {
		name, content string
		want          []string
	}{"over the cap", "*\n", []string{"more than the cap"}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := s.Report(ctx)
			before := rejections(r)
			writeAtomic(t, file, tc.content)
			// Wait for the watcher's note on the rejection.
			deadline := time.Now().Add(5 * time.Second)
			for rejections(r) == before {
				if time.Now().After(deadline) {
					t.Fatalf("no rejection noted within 5s; notes: %q", r.Notes)
				}
				time.Sleep(20 * time.Millisecond)
				r, _ = s.Report(ctx)
			}
			last := r.Notes[len(r.Notes)-1]
			want := append(tc.want, file)
			if tc.name == "over the cap" {
				want = append(want, "the old targets stay")
			}
			for _, w := range want {
				if !strings.Contains(last, w) {
					t.Errorf("note %q lacks %q", last, w)
				}
			}
			if got := s.Targets().String(); got != "GO-2099-0101" {
				t.Fatalf("targets %q after a refused file, want the old GO-2099-0101", got)
			}
			expectArmed("after "+tc.name, digest, rest)
		})
	}
	leaf, others := bySymbol("Leaf")
	writeAtomic(t, file, "example.com/hazard.Leaf\n")
	deadline := time.Now().Add(5 * time.Second)
	for s.Targets().String() != "example.com/hazard.Leaf" {
		if time.Now().After(deadline) {
			t.Fatalf("targets %q 5s after a good change", s.Targets().String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The set changes before its probes are armed: give them a moment.
	for deadline := time.Now().Add(5 * time.Second); armedSites(t, p.pid(), path, leaf) != len(leaf) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	expectArmed("example.com/hazard.Leaf", leaf, others)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkPristine(t, p.pid(), path, sites, "after Close")
	figure(t, "targets_watch_cases", len(cases))
	figure(t, "malformed_inputs", len(cases))
}

// writeAtomic replaces file by a renamed one, so that the watcher never
// reads it half-written.
func writeAtomic(t testing.TB, file, content string) {
	t.Helper()
	tmp := file + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func rejections(r *report.Report) int {
	n := 0
	for _, note := range r.Notes {
		if strings.HasPrefix(note, "targets file ") && (strings.Contains(note, " rejected at ") || strings.Contains(note, " could not be read at ")) {
			n++
		}
	}
	return n
}
