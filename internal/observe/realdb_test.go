package observe

import (
	"path/filepath"
	"testing"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
	"github.com/reach-sca/reach/internal/vulndb"
)

// TestRealDB runs testdata/progs/textyaml under observation against the
// real vulnerability database ($REACH_TEST_VULNDB): GO-2021-0113
// (language.Parse) is reached from main.main.
func TestRealDB(t *testing.T) {
	dir := testprog.RealDB(t)
	testprog.RequireRoot(t)
	db, err := vulndb.New(dir, vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []testprog.Variant{testprog.Plain, testprog.StrippedPIE} {
		t.Run(v.Name, func(t *testing.T) {
			path := testprog.Build(t, testprog.Dir(t, "textyaml"), v)
			s := newSession(t, db, Options{Report: report.Report{Mode: "run"}})
			r := runApp(t, s, path)
			sym := symbol(t, r, path, "GO-2021-0113", "Parse")
			if sym.Status != report.Reached {
				t.Fatalf("language.Parse: status %s, want reached", sym.Status)
			}
			if len(sym.Callsites) != 1 || sym.Callsites[0].Function != "main.main" ||
				filepath.Base(sym.Callsites[0].File) != "main.go" {
				t.Fatalf("language.Parse: callsites %+v, want main.main in main.go", sym.Callsites)
			}
			for _, name := range []string{"MatchStrings", "MustParse", "ParseAcceptLanguage"} {
				for _, b := range r.Binaries {
					for _, f := range b.Findings {
						for _, s := range f.Symbols {
							if f.OSV == "GO-2021-0113" && s.Name == name && s.Status == report.Reached {
								t.Errorf("%s reached, but the program never calls it", name)
							}
						}
					}
				}
			}
		})
	}
}
