package observe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/covdata"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// inlineDB declares vulnerable, in every version, the functions that
// testdata/progs/inlinecopies calls through inlined copies, so that the
// test runs on any toolchain.
type inlineDB struct{}

func (inlineDB) ByModules(context.Context, []string) ([]*osv.Entry, error) {
	entry := func(id, module, pkg string, symbols ...string) *osv.Entry {
		return &osv.Entry{
			ID:       id,
			Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Affected: []osv.Affected{{
				Module:            osv.Module{Path: module, Ecosystem: "Go"},
				Ranges:            []osv.Range{{Type: "SEMVER", Events: []osv.RangeEvent{{Introduced: "0"}}}},
				EcosystemSpecific: &osv.EcosystemSpecific{Packages: []osv.Package{{Path: pkg, Symbols: symbols}}},
			}},
		}
	}
	return []*osv.Entry{
		entry("GO-2099-1001", osv.ModuleStdlib, "net/http", "CanonicalHeaderKey", "ListenAndServe", "Header.WriteSubset"),
		entry("GO-2099-1002", "golang.org/x/text", "golang.org/x/text/language", "Parse"),
		entry("GO-2099-1003", "gopkg.in/yaml.v2", "gopkg.in/yaml.v2", "yaml_parser_remove_simple_key"),
		entry("GO-2099-1004", osv.ModuleStdlib, "crypto/tls", "Conn.quicSetReadSecret"),
	}, nil
}

// TestInlineCopiesCoverage runs testdata/progs/inlinecopies, whose
// vulnerable calls are inlined where their inline marks do not run once
// per call, under reach -count, and checks each symbol against Go's
// coverage of the same source and arguments: reached if and only if
// coverage saw it run; hits equal to coverage's calls unless the sites say
// they are Inexact; callsite hits adding up to the hits; and the callsite
// at the call's line.
func TestInlineCopiesCoverage(t *testing.T) {
	testprog.RequireRoot(t)
	dir := testprog.Dir(t, "inlinecopies")
	lines := markerLines(t, filepath.Join(dir, "main.go"))
	type want struct {
		pkg, sym string
		caller   string // a function the symbol is inlined into, in every build
		callsite string // the reported callsite's function, at its "call:" line; "" to skip
	}
	cases := []struct {
		args  []string
		wants []want
	}{
		// b is false in the only call: CanonicalHeaderKey is not called.
		{[]string{"andand", "1"}, []want{{"net/http", "CanonicalHeaderKey", "main.check", "main.check"}}},
		{[]string{"andand", "7"}, []want{{"net/http", "CanonicalHeaderKey", "main.check", "main.check"}}},
		{[]string{"loop", "30"}, []want{{"golang.org/x/text/language", "Parse", "main.loop", "main.loop"}}},
		{[]string{"serve", "5"}, []want{
			{"net/http", "ListenAndServe", "main.serve", "main.serve"},
			{"net/http", "Header.WriteSubset", "net/http.(*chunkWriter).writeHeader", ""},
		}},
		// Two first entries of one copy, the second also entered from the
		// first through the caller's jump: counted twice a call before.
		{[]string{"yaml", "5"}, []want{{"gopkg.in/yaml.v2", "yaml_parser_remove_simple_key", "gopkg.in/yaml%2ev2.yaml_parser_fetch_block_entry", ""}}},
	}
	for _, tc := range []string{"", "go1.21.0"} {
		if testing.Short() && tc != "" {
			continue
		}
		name := "local"
		if tc != "" {
			name = tc
		}
		t.Run(name, func(t *testing.T) {
			cov := testprog.Variant{Name: name + "-cover", Toolchain: tc, CoverPkg: "net/http,crypto/tls,golang.org/x/text/language,gopkg.in/yaml.v2,example.com/inlinecopies"}
			covPath := testprog.Build(t, dir, cov)
			calls := make([]*covdata.Coverage, len(cases))
			for k, c := range cases {
				covDir := t.TempDir()
				cmd := exec.Command(covPath, c.args...)
				cmd.Env = append(os.Environ(), "GOCOVERDIR="+covDir)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s %v: %v\n%s", covPath, c.args, err, out)
				}
				calls[k] = testprog.ReadCoverage(t, tc, dir, covDir)
			}
			if tc != "" {
				// The coverage build itself: a spill of quicSetReadSecret's
				// argument, at the copy's inline index, runs before
				// `if c.quic != nil` in sendServerParameters; the copy does
				// not.
				t.Run("cover", func(t *testing.T) {
					args := []string{"tls", "2"}
					covDir := t.TempDir()
					cmd := exec.Command(covPath, args...)
					cmd.Env = append(os.Environ(), "GOCOVERDIR="+covDir)
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("%s %v: %v\n%s", covPath, args, err, out)
					}
					n, ok := testprog.ReadCoverage(t, tc, dir, covDir).Calls["crypto/tls"]["Conn.quicSetReadSecret"]
					if !ok {
						t.Fatal("crypto/tls.Conn.quicSetReadSecret: not in the coverage profile")
					}
					t.Setenv("GOCOVERDIR", t.TempDir())
					s := newSession(t, inlineDB{}, Options{Mode: probe.Count, Report: report.Report{Mode: "run"}})
					r := runApp(t, s, covPath, args...)
					checkInlined(t, covPath, "crypto/tls", "Conn.quicSetReadSecret", "crypto/tls.(*serverHandshakeStateTLS13).sendServerParameters", args, n, 0, "", r)
				})
			}
			for _, v := range []testprog.Variant{
				{Name: name + "-plain", Toolchain: tc},
				{Name: name + "-pie", Toolchain: tc, PIE: true},
				{Name: name + "-stripped", Toolchain: tc, Stripped: true},
			} {
				t.Run(strings.TrimPrefix(v.Name, name+"-"), func(t *testing.T) {
					path := testprog.Build(t, dir, v)
					for k, c := range cases {
						s := newSession(t, inlineDB{}, Options{Mode: probe.Count, Report: report.Report{Mode: "run"}})
						r := runApp(t, s, path, c.args...)
						for _, w := range c.wants {
							n, ok := calls[k].Calls[w.pkg][w.sym]
							if !ok {
								t.Fatalf("%s.%s: not in the coverage profile (%s)", w.pkg, w.sym, calls[k])
							}
							checkInlined(t, path, w.pkg, w.sym, w.caller, c.args, n, lines[c.args[0]], w.callsite, r)
						}
					}
				})
			}
		})
	}
}

// checkInlined checks symbol pkg.sym in report r of the binary at path
// against calls, the calls Go's coverage counted; see
// TestInlineCopiesCoverage. The symbol must be inlined into caller.
func checkInlined(t *testing.T, path, pkg, sym, caller string, args []string, calls uint64, line int, callsite string, r *report.Report) {
	t.Helper()
	inexact := inlineInexact(t, path, pkg, sym, caller)
	var s *report.Symbol
	for _, f := range binaryOf(t, r, path).Findings {
		for _, x := range f.Symbols {
			if x.Package == pkg && x.Name == sym {
				s = x
			}
		}
	}
	if s == nil {
		t.Fatalf("%v: no symbol %s.%s in the report", args, pkg, sym)
	}
	name := pkg + "." + sym
	if (s.Status == report.Reached) != (calls > 0) {
		t.Errorf("%v: %s is %s (%d hits), but coverage counted %d calls", args, name, s.Status, s.Hits, calls)
		return
	}
	if calls == 0 {
		return
	}
	// Where some calls may pass no counted site (Inexact), observe may
	// also add uncounted sites in: reached is all there is to check.
	if !inexact && s.Hits != calls {
		t.Errorf("%v: %s: %d hits, but coverage counted %d calls", args, name, s.Hits, calls)
	}
	t.Logf("%v: %s: %d hits, %d calls (inexact: %v)", args, name, s.Hits, calls, inexact)
	var sum uint64
	for _, c := range s.Callsites {
		sum += c.Hits
	}
	if sum != s.Hits {
		t.Errorf("%v: %s: callsite hits add up to %d, hits %d", args, name, sum, s.Hits)
	}
	if callsite == "" {
		return
	}
	if len(s.Callsites) != 1 || s.Callsites[0].Function != callsite || s.Callsites[0].Line != line {
		var got []report.Callsite
		for _, c := range s.Callsites {
			got = append(got, *c)
		}
		t.Errorf("%v: %s: callsites %+v, want %s at line %d", args, name, got, callsite, line)
	}
}

// inlineInexact reports whether the function pkg.sym has inexact inline
// sites in the binary at path, and fails the test when it is not inlined
// into caller: the case the test is about would be gone.
func inlineInexact(t *testing.T, path, pkg, sym, caller string) (inexact bool) {
	t.Helper()
	b, err := binfo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fn := pkg + "." + sym
	found := false
	for fi := range b.Funcs {
		f := &b.Funcs[fi]
		for i, in := range f.Inlines {
			if p, s := binfo.SplitFuncName(in.Func); p+"."+strings.NewReplacer("(*", "", ")", "").Replace(s) != fn {
				continue
			}
			found = found || f.Name == caller
			sites, err := b.InlineSites(f, i)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sites {
				inexact = inexact || s.Inexact
			}
		}
	}
	if !found {
		t.Fatalf("%s: %s is not inlined into %s: the build no longer has the case under test", path, fn, caller)
	}
	return inexact
}
