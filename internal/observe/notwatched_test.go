package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// failingEngine is the real engine, except that arming fails for the
// groups fail picks.
type failingEngine struct {
	probe.Engine
	fail func(uint64) bool
}

var errInjected = errors.New("injected arming failure")

func (e failingEngine) Arm(ctx context.Context, spec probe.ProcessSpec) error {
	var keep []probe.Group
	var errs []error
	for _, g := range spec.Groups {
		if e.fail(g.ID) {
			errs = append(errs, &probe.GroupError{Group: g.ID, Err: errInjected})
			continue
		}
		keep = append(keep, g)
	}
	if len(keep) > 0 {
		spec.Groups = keep
		if err := e.Engine.Arm(ctx, spec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TestNotWatchedArmFailure: a symbol whose probes could not be armed in a
// process is not_watched, with the process and the error, even though it
// ran there; the others are watched as usual.
func TestNotWatchedArmFailure(t *testing.T) {
	testprog.RequireRoot(t)
	ctx := context.Background()
	path := buildApp(t, testprog.Plain)
	eng, err := probe.New(ctx, probe.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var s *Session
	attach := func(id uint64) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.groups[id]
		return g != nil && g.name == "Attach"
	}
	s = newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "attach"}, Engine: failingEngine{eng, attach}})
	a := startApp(t, path, "wait")
	a.expect("ready")
	pid := a.cmd.Process.Pid
	if err := s.Add(ctx, pid); !errors.Is(err, errInjected) {
		t.Fatalf("Add: %v, want the injected failure", err)
	}
	a.in.Write([]byte("go\n"))
	a.expect("done")
	a.wait()
	r := closeAndReport(t, s)
	sym := symbol(t, r, path, "GO-2099-0002", "Attach")
	want := fmt.Sprintf("its probes could not be armed in process %d: %v", pid, errInjected)
	if sym.Status != report.NotWatched || len(sym.Watched) != 0 || !slices.Equal(sym.Unwatched, []string{want}) {
		t.Errorf("Attach: %s, watched %+v, unwatched %q; want not_watched, never watched, %q", sym.Status, sym.Watched, sym.Unwatched, want)
	}
	// Never was armed all the time the process ran: linked, one period.
	never := symbol(t, r, path, "GO-2099-0001", "Never")
	if never.Status != report.Linked || len(never.Unwatched) != 0 || len(never.Watched) != 1 || never.Watched[0].Until == nil {
		t.Errorf("Never: %s, watched %+v, unwatched %q; want linked, one closed period", never.Status, never.Watched, never.Unwatched)
	}
}

// TestNotWatchedTargetsChange follows one process through target changes
// made while it runs: Attach, selected only after its first call, is
// reached with one watched period from the change on; Never, selected
// only at the end, is not_watched; Direct, deselected mid-way, is
// not_watched with a closed period; the report lists each selection in
// force while the process ran, with the file and its lines.
func TestNotWatchedTargetsChange(t *testing.T) {
	testprog.RequireRoot(t)
	ctx := context.Background()
	path := buildApp(t, testprog.Plain)
	none, _ := NewSelection()
	logs := &testprog.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil))
	s := newSession(t, fixtureDB(t), Options{Report: report.Report{Mode: "attach"}, Targets: none, Logger: log})
	tf := filepath.Join(t.TempDir(), "targets")
	write := func(content string) {
		if err := os.WriteFile(tf, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("example.com/vuln.Direct\nGO-2099-9999\n")
	if err := s.WatchTargets(ctx, tf, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, path, "wait")
	a.expect("ready") // Attach ran before, not watched
	if err := s.Add(ctx, a.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// Nothing was analysed when the file was first read: the warning
	// comes once the process is.
	warn := fmt.Sprintf(`%s:2: \"GO-2099-9999\": no entry of the vulnerability database has this ID or alias`, tf)
	waitFor(t, func() bool { return strings.Contains(logs.String(), warn) })
	write("# Attach by ID\nGO-2099-0002\n")
	waitFor(t, func() bool { return s.Targets().String() == "GO-2099-0002" })
	// SetTargets sets the targets, then arms them holding armingMu.
	s.armingMu.Lock()
	s.armingMu.Unlock()
	changed := time.Now()
	a.in.Write([]byte("go\n"))
	a.expect("done")
	last, _ := NewSelection("example.com/vuln.Never")
	if err := s.SetTargets(ctx, last); err != nil {
		t.Fatal(err)
	}
	a.wait()
	r := closeAndReport(t, s)

	attach := symbol(t, r, path, "GO-2099-0002", "Attach")
	if attach.Status != report.Reached || len(attach.Watched) != 1 || attach.Watched[0].From.After(changed) || attach.FirstSeen.Before(attach.Watched[0].From) {
		t.Errorf("Attach: %s, watched %+v, first seen %v; want reached, watched from the change (before %v)", attach.Status, attach.Watched, attach.FirstSeen, changed)
	}
	if !slices.Contains(attach.Unwatched, reasonNotSelected) {
		t.Errorf("Attach: reasons %q lack that it was not selected at first", attach.Unwatched)
	}
	direct := symbol(t, r, path, "GO-2099-0001", "Direct")
	if direct.Status != report.NotWatched || len(direct.Watched) != 1 || direct.Watched[0].Until == nil || direct.Watched[0].Until.After(changed) {
		t.Errorf("Direct: %s, watched %+v; want not_watched, watched until the change", direct.Status, direct.Watched)
	}
	never := symbol(t, r, path, "GO-2099-0001", "Never")
	if never.Status != report.NotWatched || len(never.Watched) != 1 || !never.Watched[0].From.After(changed) {
		t.Errorf("Never: %s, watched %+v; want not_watched, watched at the end only", never.Status, never.Watched)
	}
	var got []string
	for _, sel := range r.Targets {
		var sels []string
		for _, x := range sel.Selectors {
			sels = append(sels, fmt.Sprintf("%s@%d", x.Selector, x.Line))
		}
		got = append(got, sel.File+": "+strings.Join(sels, " "))
	}
	want := []string{tf + ": example.com/vuln.Direct@1 GO-2099-9999@2", tf + ": GO-2099-0002@2", ": example.com/vuln.Never@0"}
	if !slices.Equal(got, want) {
		t.Errorf("targets %q, want %q", got, want)
	}
	// The report notes it although it is no longer in force.
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, strings.ReplaceAll(warn, `\"`, `"`)) }) {
		t.Errorf("notes %q lack the unknown ID", r.Notes)
	}
}

func TestQuoteShort(t *testing.T) {
	long := strings.Repeat("é", 60) // 120 bytes
	for _, tt := range []struct{ in, want string }{
		{"GO-2021-0113", `"GO-2021-0113"`},
		{"a\x1b[2Jb\n", `"a\x1b[2Jb\n"`},
		{long, strconv.Quote(strings.Repeat("é", 40)) + "..."},
	} {
		if got := quoteShort(tt.in); got != tt.want {
			t.Errorf("quoteShort(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
