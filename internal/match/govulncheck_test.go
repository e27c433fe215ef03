package match

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// govulncheckLevels runs govulncheck in binary mode on path against the
// database directory db and returns, per OSV ID, the finest level it
// reports: "symbol", "package" or "module".
func govulncheckLevels(t *testing.T, path, db string) map[string]string {
	t.Helper()
	rank := map[string]int{"module": 1, "package": 2, "symbol": 3}
	levels := map[string]string{}
	for _, f := range testprog.GovulncheckBinary(t, db, path) {
		level := "module"
		if len(f.Trace) > 0 && f.Trace[0].Function != "" {
			level = "symbol"
		} else if len(f.Trace) > 0 && f.Trace[0].Package != "" {
			level = "package"
		}
		if rank[level] > rank[levels[f.OSV]] {
			levels[f.OSV] = level
		}
	}
	return levels
}

func ids(m map[string]string, keep func(id, level string) bool) []string {
	var out []string
	for id, level := range m {
		if keep(id, level) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// TestAgainstGovulncheck compares Match with govulncheck's binary mode on
// unstripped fixtures: the linked findings must be exactly govulncheck's
// symbol-level ones, entries without symbol data included (govulncheck
// then names every function of the module in the binary; reach links the
// module as a whole). For stdlib, reach reports only entries whose
// packages are in the binary, which are govulncheck's package-level ones;
// for other modules, every affected entry, as govulncheck does.
//
// With REACH_TEST_LARGE_BIN set to the path of a large real program (the
// Hugo build of bench/scan, which takes minutes to build: too long for CI),
// it compares on that one too.
func TestAgainstGovulncheck(t *testing.T) {
	db := realDB(t)
	dbDir := testprog.RealDB(t)
	type testCase struct {
		prog string
		v    testprog.Variant
		path string // a prebuilt binary instead
	}
	cases := []testCase{
		{prog: "textyaml", v: testprog.Plain},
		{prog: "stdmail", v: testprog.Variant{Name: "go1.21.0", Toolchain: "go1.21.0"}},
		{prog: "wholemods", v: testprog.Plain},
	}
	if large := os.Getenv("REACH_TEST_LARGE_BIN"); large != "" {
		cases = append(cases, testCase{prog: filepath.Base(large), v: testprog.Variant{Name: "prebuilt"}, path: large})
	}
	for _, tc := range cases {
		t.Run(tc.prog+"-"+tc.v.Name, func(t *testing.T) {
			if testing.Short() && tc.v.Toolchain != "" {
				t.Skip("-short: skipping a build with another toolchain")
			}
			path := tc.path
			if path == "" {
				path = testprog.Build(t, testprog.Dir(t, tc.prog), tc.v)
			}
			res := matchReal(t, db, path)
			gv := govulncheckLevels(t, path, dbDir)

			ours := map[string]string{}
			for _, f := range res.Findings {
				ours[f.Entry.ID] = string(f.Status)
				if f.Module == "stdlib" || f.Module == "toolchain" {
					ours[f.Entry.ID] += "/go"
				}
			}
			linked := ids(ours, func(_, s string) bool { return s == string(Linked) || s == string(Linked)+"/go" })
			symbols := ids(gv, func(_, l string) bool { return l == "symbol" })
			if !slices.Equal(linked, symbols) {
				t.Errorf("linked findings\n\t%v\ngovulncheck symbol-level findings\n\t%v", linked, symbols)
			}
			// Everything govulncheck finds at package level or finer, we find.
			for _, id := range ids(gv, func(_, l string) bool { return l != "module" }) {
				if ours[id] == "" {
					t.Errorf("%s: govulncheck finds it at %s level, Match does not", id, gv[id])
				}
			}
			// Every finding of ours, govulncheck has too; stdlib module-level
			// ones are dropped on purpose.
			for id, s := range ours {
				if gv[id] == "" {
					t.Errorf("%s: Match finds it (%s), govulncheck does not", id, s)
				}
			}
			for id, l := range gv {
				if l == "module" && ours[id] != "" && ours[id] != string(Imported) {
					t.Errorf("%s: govulncheck module level, Match %s", id, ours[id])
				}
			}
			whole := 0
			for _, f := range res.Findings {
				if f.WholeModule && f.Status == Linked {
					whole++
				}
			}
			t.Logf("%d findings (%d linked, %d of them without symbol data); govulncheck %d (%d symbol-level)", len(ours), len(linked), whole, len(gv), len(symbols))
		})
	}
}
