package match

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testprog.Cleanup()
	os.Exit(code)
}

// realDB opens the database named by $REACH_TEST_VULNDB. It skips the test
// when unset, and fails it when CI=true.
func realDB(t *testing.T) *vulndb.Client {
	t.Helper()
	c, err := vulndb.New(testprog.RealDB(t), vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// matchReal opens the binary at path and matches it against every entry
// the database lists for its modules.
func matchReal(t *testing.T, db *vulndb.Client, path string) *Result {
	t.Helper()
	b, err := binfo.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { b.Close() })
	mods := []string{b.Main.Path, osv.ModuleStdlib, osv.ModuleToolchain}
	for _, d := range b.Deps {
		mods = append(mods, d.Path)
	}
	ctx := context.Background()
	entries, err := db.ByModules(ctx, mods)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Match(ctx, b, entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func finding(res *Result, id string) *Finding {
	for _, f := range res.Findings {
		if f.Entry.ID == id {
			return f
		}
	}
	return nil
}

func symbol(f *Finding, pkg, name string) *Symbol {
	for _, s := range f.Symbols {
		if s.Package == pkg && s.Name == name {
			return s
		}
	}
	return nil
}

// checkSites fails when a target of s has no site or a site error, or a
// site that is not in the function it names.
func checkSites(t *testing.T, res *Result, s *Symbol) (entries, inlined int) {
	t.Helper()
	funcs := map[string]*binfo.Func{}
	for i := range res.Binary.Funcs {
		funcs[res.Binary.Funcs[i].Name] = &res.Binary.Funcs[i]
	}
	for _, tg := range s.Funcs {
		if tg.SiteErr != nil {
			t.Errorf("%s: %v", tg.Name, tg.SiteErr)
		}
		if len(tg.Sites) == 0 {
			t.Errorf("%s: no sites", tg.Name)
		}
		for _, site := range tg.Sites {
			in := funcs[site.In]
			if in == nil {
				t.Errorf("%s: site %#x in %s, which is not a function of the binary", tg.Name, site.PC, site.In)
				continue
			}
			if site.PC < in.Entry || site.PC >= in.End {
				t.Errorf("%s: site %#x outside %s [%#x, %#x)", tg.Name, site.PC, site.In, in.Entry, in.End)
			}
			if site.Kind == binfo.SiteInline {
				inlined++
				if site.In == tg.Name {
					t.Errorf("%s: inline site in the function itself", tg.Name)
				}
			} else {
				entries++
				if site.In != tg.Name {
					t.Errorf("%s: entry site in %s", tg.Name, site.In)
				}
			}
		}
	}
	return entries, inlined
}

func TestRealTextYAML(t *testing.T) {
	db := realDB(t)
	dir := testprog.Dir(t, "textyaml")
	variants := append(append([]testprog.Variant(nil), testprog.Variants...), testprog.StrippedPIE)
	for _, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			res := matchReal(t, db, testprog.Build(t, dir, v))
			f := finding(res, "GO-2021-0113")
			if f == nil {
				t.Fatalf("no GO-2021-0113 finding among %d", len(res.Findings))
			}
			if f.Status != Linked || f.Module != "golang.org/x/text" || f.Version != "v0.3.5" || f.FixedVersion != "v0.3.7" {
				t.Errorf("GO-2021-0113: %s %s@%s fixed %s, want linked golang.org/x/text@v0.3.5 fixed v0.3.7", f.Status, f.Module, f.Version, f.FixedVersion)
			}
			s := symbol(f, "golang.org/x/text/language", "Parse")
			if s == nil {
				t.Fatalf("GO-2021-0113: language.Parse not found; symbols %v", symbolNames(f))
			}
			if !hasFunc(s.Funcs, "golang.org/x/text/language.Parse") {
				t.Errorf("language.Parse targets %v lack golang.org/x/text/language.Parse", targetNames(s))
			}
			entries, inlined := checkSites(t, res, s)
			t.Logf("language.Parse: %d targets, %d entry sites, %d inline sites", len(s.Funcs), entries, inlined)
			if entries+inlined == 0 {
				t.Errorf("language.Parse has no sites")
			}
			// The program calls yaml.Unmarshal; the database has entries for
			// yaml.v2 v2.2.2 naming it.
			var yaml *Finding
			for _, f := range res.Findings {
				if f.Module == "gopkg.in/yaml.v2" && f.Status == Linked {
					yaml = f
					break
				}
			}
			if yaml == nil {
				t.Errorf("no linked gopkg.in/yaml.v2 finding")
			} else if yaml.Version != "v2.2.2" {
				t.Errorf("yaml.v2 version %s, want v2.2.2", yaml.Version)
			}
			for _, f := range res.Findings {
				t.Logf("%s %s@%s %s %v", f.Entry.ID, f.Module, f.Version, f.Status, symbolNames(f))
			}
		})
	}
}

func TestRealStdMail(t *testing.T) {
	db := realDB(t)
	dir := testprog.Dir(t, "stdmail")
	if testing.Short() {
		t.Skip("-short: skipping a build with the go1.21.0 toolchain")
	}
	path := testprog.Build(t, dir, testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"})
	res := matchReal(t, db, path)
	f := finding(res, "GO-2024-2609")
	if f == nil {
		t.Fatalf("no GO-2024-2609 finding among %d", len(res.Findings))
	}
	if f.Status != Linked || f.Module != osv.ModuleStdlib || f.Version != "v1.21.0" || f.FixedVersion != "v1.21.8" {
		t.Errorf("GO-2024-2609: %s %s@%s fixed %s, want linked stdlib@v1.21.0 fixed v1.21.8", f.Status, f.Module, f.Version, f.FixedVersion)
	}
	s := symbol(f, "net/mail", "ParseAddress")
	if s == nil {
		t.Fatalf("GO-2024-2609: net/mail.ParseAddress not found; symbols %v", symbolNames(f))
	}
	checkSites(t, res, s)
	// Every stdlib finding is at the binary's Go version; the main module,
	// built outside version control, is unchecked.
	for _, f := range res.Findings {
		if f.Module == osv.ModuleStdlib && f.Version != "v1.21.0" {
			t.Errorf("%s: stdlib version %s, want v1.21.0", f.Entry.ID, f.Version)
		}
	}
	t.Logf("%d findings, %d linked", len(res.Findings), countLinked(res))
}

func countLinked(res *Result) int {
	n := 0
	for _, f := range res.Findings {
		if f.Status == Linked {
			n++
		}
	}
	return n
}

func symbolNames(f *Finding) []string {
	var out []string
	for _, s := range f.Symbols {
		out = append(out, s.Package+"."+s.Name)
	}
	return out
}

func targetNames(s *Symbol) string {
	var out []string
	for _, t := range s.Funcs {
		out = append(out, t.Name)
	}
	return strings.Join(out, ", ")
}

// TestRealUncounted: in go1.21.0's net/http, the closures and defer
// wrappers inside vulnerable methods ((*body).Read.func1, (*Server).Serve's
// func1 to func3) and every compiler-generated wrapper (whose code is
// "<autogenerated>") are watched with Uncounted sites: they show that the
// method ran but are not calls of it. The methods' own sites count.
func TestRealUncounted(t *testing.T) {
	db := realDB(t)
	if testing.Short() {
		t.Skip("-short: skipping a build with the go1.21.0 toolchain")
	}
	for _, v := range []testprog.Variant{
		{Name: "go1.21.0", Toolchain: "go1.21.0"},
		{Name: "go1.21.0-stripped", Toolchain: "go1.21.0", Stripped: true},
	} {
		t.Run(v.Name, func(t *testing.T) {
			path := testprog.Build(t, testprog.Dir(t, "httpcount"), v)
			res := matchReal(t, db, path)
			f := finding(res, "GO-2024-2687")
			if f == nil {
				t.Fatalf("no GO-2024-2687 finding among %d", len(res.Findings))
			}
			for _, tt := range []struct {
				symbol    string
				counted   []string
				uncounted []string
			}{
				{"body.Read", []string{"net/http.(*body).Read"}, []string{"net/http.(*body).Read.func1"}},
				{"Server.Serve", []string{"net/http.(*Server).Serve"},
					[]string{"net/http.(*Server).Serve.func1", "net/http.(*Server).Serve.func2", "net/http.(*Server).Serve.func3"}},
			} {
				s := symbol(f, "net/http", tt.symbol)
				if s == nil {
					t.Fatalf("no symbol %s", tt.symbol)
				}
				want := map[string]bool{}
				for _, n := range tt.counted {
					want[n] = false
				}
				for _, n := range tt.uncounted {
					want[n] = true
				}
				for _, tg := range s.Funcs {
					u, ok := want[tg.Name]
					if !ok {
						continue
					}
					delete(want, tg.Name)
					for _, site := range tg.Sites {
						if site.Uncounted != u {
							t.Errorf("%s: site %#x Uncounted %v, want %v", tg.Name, site.PC, site.Uncounted, u)
						}
					}
				}
				if len(want) > 0 {
					t.Errorf("%s: targets %v missing; has %s", tt.symbol, want, targetNames(s))
				}
			}
			// Wrappers, by their code's file name rather than by theirs.
			wrappers := 0
			for _, f := range res.Findings {
				for _, s := range f.Symbols {
					for _, tg := range s.Funcs {
						for _, site := range tg.Sites {
							if site.Kind == binfo.SiteInline {
								continue
							}
							fr := res.Binary.Frames(site.PC)
							if len(fr) > 0 && fr[len(fr)-1].File == "<autogenerated>" {
								wrappers++
								if !site.Uncounted {
									t.Errorf("%s: entry site %#x of a compiler-generated wrapper is counted", tg.Name, site.PC)
								}
							}
						}
					}
				}
			}
			t.Logf("%d wrapper entry sites", wrappers)
		})
	}
}
