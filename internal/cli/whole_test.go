package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/match"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestRunWholeModules runs a program using two real modules whose entries
// have no symbol data. Both are reached from main.main, entered at the
// function main calls: jwt's package initialization, which calls its own
// exported RegisterSigningMethod (and chi's, if any), is not a reach.
func TestRunWholeModules(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	dir := testprog.Dir(t, "wholemods")
	src := filepath.Join(dir, "main.go")
	for _, v := range []testprog.Variant{testprog.Plain, {Name: "go1.21.0", Toolchain: "go1.21.0"}} {
		t.Run(v.Name, func(t *testing.T) {
			bin := testprog.Build(t, dir, v)
			out := filepath.Join(t.TempDir(), "report.json")
			res := runReach(t, "run", "-db", db, "-format", "json", "-o", out, "--", bin)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			b := observedBinary(t, readReport(t, out), bin)
			for _, c := range []struct{ id, module, call, entered string }{
				{"GO-2025-3553", "github.com/golang-jwt/jwt", "jwt.Parse(", "github.com/golang-jwt/jwt.Parse"},
				{"GO-2026-4316", "github.com/go-chi/chi", "chi.NewRouter(", "github.com/go-chi/chi.NewRouter"},
			} {
				f, sym := observedSymbol(t, b, c.id, c.module, "")
				if !f.WholeModule || sym.Scope != report.ScopeModule || f.Status != report.Reached {
					t.Errorf("%s: whole module %v, scope %q, status %s; want a reached whole module", c.id, f.WholeModule, sym.Scope, f.Status)
				}
				wantReached(t, sym, "main.main", src, sourceLine(t, src, c.call), 1)
				if len(sym.Stack) == 0 || sym.Stack[0].Function != c.entered {
					t.Errorf("%s: stack %v, want it entered at %s", c.id, sym.Stack, c.entered)
				}
				for _, fr := range sym.Stack {
					if match.IsInit(fr.Function) || strings.HasPrefix(fr.Function, "runtime.doInit") {
						t.Errorf("%s: the hit recorded is initialization: %v", c.id, sym.Stack)
					}
				}
			}
		})
	}
}
