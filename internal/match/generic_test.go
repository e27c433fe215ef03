package match

import (
	"context"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestRealGeneric matches testdata/generic, built for real, against a
// hand-written entry: generic instantiations (with a struct tag holding
// brackets and dots in the type argument), method values, closures and
// inlined copies must all be found under the OSV symbol they implement,
// with sites that binfo can compute.
func TestRealGeneric(t *testing.T) {
	const lib = "example.com/gen/lib"
	e := entry("GO-2000-0100", "example.com/gen", []string{"0<"},
		imp{path: lib, symbols: []string{"List.Push", "Parser.Parse", "Map", "Twice"}})
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Stripped, testprog.Inlined, testprog.PIE} {
		t.Run(v.Name, func(t *testing.T) {
			path := testprog.Build(t, "testdata/generic", v)
			b, err := binfo.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			b.Main.Version = "v1.0.0" // built outside version control: (devel)
			res, err := Match(context.Background(), b, []*osv.Entry{e}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Findings) != 1 {
				t.Fatalf("got %d findings, want 1", len(res.Findings))
			}
			f := res.Findings[0]
			got := map[string][]string{}
			for _, s := range f.Symbols {
				if s.Package != lib {
					t.Errorf("symbol of package %s", s.Package)
				}
				for _, tg := range s.Funcs {
					got[s.Name] = append(got[s.Name], tg.Name)
					if tg.SiteErr != nil {
						t.Errorf("%s: %v", tg.Name, tg.SiteErr)
					}
					if len(tg.Sites) == 0 {
						t.Errorf("%s: no sites", tg.Name)
					}
				}
				t.Logf("%s: %s", s.Name, strings.Join(got[s.Name], ", "))
			}
			// The pclntab spells every instantiation's type arguments "[...]",
			// so the instantiations of Push share one name, and their target
			// has the sites of all of them.
			want := map[string][]string{
				"List.Push":    {lib + ".(*List[...]).Push", lib + ".(*List[...]).Push-fm", lib + ".(*List[...]).Push.func1"},
				"Parser.Parse": {lib + ".(*Parser).Parse", lib + ".(*Parser).Parse-fm"},
				"Map":          {lib + ".Map[...]"},
				"Twice":        {lib + ".Twice"},
			}
			for sym, names := range want {
				for _, n := range names {
					if !contains(got[sym], n) {
						t.Errorf("%s: no target %s among %v", sym, n, got[sym])
					}
				}
			}
			if v == testprog.Plain {
				// Push for go.shape.int, for the struct shape, and the
				// dictionary wrapper (*List[int]).Push: at least two bodies.
				for _, s := range f.Symbols {
					for _, tg := range s.Funcs {
						if tg.Name == lib+".(*List[...]).Push" && len(tg.Sites) < 2 {
							t.Errorf("%s: %d sites, want one per instantiation", tg.Name, len(tg.Sites))
						}
					}
				}
			}
			for sym, names := range got {
				for _, n := range names {
					if strings.Contains(n, "ParseAll") || strings.Contains(n, ".Len") {
						t.Errorf("%s: wrong target %s", sym, n)
					}
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
