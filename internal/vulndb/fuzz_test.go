package vulndb

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func addFixtureSeeds(f *testing.F, pattern string) {
	names, err := filepath.Glob(filepath.Join(fixtureDir, pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzParseEntry(f *testing.F) {
	addFixtureSeeds(f, "ID/*.json")
	f.Add([]byte(`{"id":"GO-2099-0001","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"name":""}}]}`))
	f.Add([]byte(`{"id":"GO-2099-0001","affected":null,"modified":"not a time"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		const id = "GO-2099-0001"
		e, err := parseEntry(data, id)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), id) {
				t.Fatalf("error %v: want ErrMalformed naming %s", err, id)
			}
			return
		}
		if e.ID != id {
			t.Fatalf("parsed entry has ID %q, want %q", e.ID, id)
		}
		for _, a := range e.Affected {
			if a.Module.Path == "" {
				t.Fatal("accepted an affected module without a path")
			}
		}
		Withdrawn(e)
	})
}

func FuzzParseModulesIndex(f *testing.F) {
	addFixtureSeeds(f, "index/modules.json")
	f.Add([]byte(`[{"path":"a","vulns":[{"id":"../x"}]}]`))
	f.Add([]byte(`[{"path":"a","vulns":null},{"path":"a","vulns":[{"id":"B"},{"id":"A"},{"id":"B"}]}]`))
	f.Add(manyEntries(MaxModuleEntries+1, MaxModuleEntries+1)["index/modules.json"])
	f.Add(manyEntries(MaxModuleEntries, MaxModuleEntries)["index/modules.json"])
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := parseModulesIndex(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		all := map[string]bool{}
		for path, ids := range idx {
			if path == "" {
				t.Fatal("accepted an empty module path")
			}
			if len(ids) > MaxModuleEntries {
				t.Fatalf("accepted %d entries for %s", len(ids), path)
			}
			for _, id := range ids {
				all[id] = true
			}
			if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
				t.Fatalf("IDs of %s not sorted and unique: %q", path, ids)
			}
			for _, id := range ids {
				checkSafeID(t, id)
			}
		}
		if len(all) > MaxEntries {
			t.Fatalf("accepted %d entries", len(all))
		}
	})
}

func FuzzParseVulnsIndex(f *testing.F) {
	addFixtureSeeds(f, "index/vulns.json")
	f.Add([]byte(`[{"id":"GO-2099-0001","modified":"x"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := parseVulnsIndex(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		for id := range idx {
			checkSafeID(t, id)
		}
	})
}

func FuzzParseDBIndex(f *testing.F) {
	addFixtureSeeds(f, "index/db.json")
	f.Add([]byte(`{"modified":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseDBIndex(data); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
	})
}

func FuzzValidID(f *testing.F) {
	for _, s := range []string{"GO-2021-0113", "../x", "a/b", "..", "GHSA-1234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidID(id) {
			checkSafeID(t, id)
		}
	})
}

// checkSafeID fails unless id stays inside the directory it is joined to,
// as a file name and as a URL path segment.
func checkSafeID(t *testing.T, id string) {
	t.Helper()
	if !ValidID(id) {
		t.Fatalf("unsafe ID %q accepted", id)
	}
	if strings.ContainsAny(id, `/\?#%:`+"\x00") || strings.Contains(id, "..") || !filepath.IsLocal(id+".json") {
		t.Fatalf("ValidID accepted %q, which is unsafe as a name", id)
	}
	c := &cache{dir: "/cache"}
	if p, err := c.path(entryEndpoint(id)); err != nil || filepath.Dir(p) != "/cache/ID" {
		t.Fatalf("cache path of %q = %q, %v", id, p, err)
	}
}
