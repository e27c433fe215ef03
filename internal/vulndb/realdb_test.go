package vulndb

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

// realDB returns the directory of the real Go vulnerability database named
// by $REACH_TEST_VULNDB. It skips the test when unset, and fails it when
// CI=true.
func realDB(tb testing.TB) string {
	tb.Helper()
	return testprog.RealDB(tb)
}

// realModules lists the module paths of the real database's index, read
// independently of the client.
func realModules(tb testing.TB, dir string) map[string][]string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "index", "modules.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var list []struct {
		Path  string
		Vulns []struct{ ID string }
	}
	if err := json.Unmarshal(data, &list); err != nil {
		tb.Fatal(err)
	}
	m := make(map[string][]string)
	for _, mod := range list {
		for _, v := range mod.Vulns {
			if !slices.Contains(m[mod.Path], v.ID) {
				m[mod.Path] = append(m[mod.Path], v.ID)
			}
		}
		sort.Strings(m[mod.Path])
	}
	return m
}

// sample returns n module paths spread over the index, stdlib included.
func sample(mods map[string][]string, n int) []string {
	paths := make([]string, 0, len(mods))
	for p := range mods {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := []string{"stdlib"}
	for i := 0; len(out) < n && i < len(paths); i += max(1, len(paths)/n) {
		if paths[i] != "stdlib" {
			out = append(out, paths[i])
		}
	}
	return out
}

func TestRealDB(t *testing.T) {
	dir := realDB(t)
	mods := realModules(t, dir)
	files, err := filepath.Glob(filepath.Join(dir, "ID", "*.json"))
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	sources := map[string]string{"dir": dir, "http": srv.URL}
	for name, source := range sources {
		t.Run(name, func(t *testing.T) {
			c, err := New(source, Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			text, err := c.ByModule(ctx, "golang.org/x/text")
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, e := range text {
				got = append(got, e.ID)
				found := false
				for _, a := range e.Affected {
					found = found || a.Module.Path == "golang.org/x/text"
				}
				if !found {
					t.Errorf("%s does not name golang.org/x/text as affected", e.ID)
				}
			}
			if !slices.Equal(got, mods["golang.org/x/text"]) || !slices.Contains(got, "GO-2021-0113") {
				t.Errorf("golang.org/x/text: %q, want %q (with GO-2021-0113)", got, mods["golang.org/x/text"])
			}
			e, err := c.ByID(ctx, "GO-2021-0113")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(e.Summary, "golang.org/x/text/language") || !slices.Contains(e.Aliases, "CVE-2021-38561") {
				t.Errorf("GO-2021-0113 = %+v", e)
			}

			paths := sample(mods, 100)
			entries, err := c.ByModules(ctx, paths)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, p := range paths {
				want = append(want, mods[p]...)
			}
			want = sortedUnique(want)
			if !slices.Equal(ids(entries), want) {
				t.Errorf("ByModules(100 modules): %d entries, want %d", len(entries), len(want))
			}
			if w := c.Warnings(); len(w) != 0 {
				t.Errorf("warnings: %q", w)
			}
			withdrawn := 0
			for _, e := range entries {
				if Withdrawn(e) {
					withdrawn++
				}
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Entries != len(files) || info.Modules != len(mods) {
				t.Errorf("Info = %+v, want %d entries and %d modules", info, len(files), len(mods))
			}
			t.Logf("%s: %d modules -> %d entries (%d withdrawn); database: %d entries, %d modules",
				name, len(paths), len(entries), withdrawn, info.Entries, info.Modules)
		})
	}
}

// TestRealDBTiming reports how long a cold ByModules of 100 modules takes on
// the directory source, and fails when it is unreasonably slow.
func TestRealDBTiming(t *testing.T) {
	dir := realDB(t)
	paths := sample(realModules(t, dir), 100)
	var best time.Duration
	var n int
	for range 5 {
		start := time.Now()
		c, err := New(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := c.ByModules(context.Background(), paths)
		if err != nil {
			t.Fatal(err)
		}
		n = len(entries)
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	t.Logf("directory source, cold client: ByModules(%d modules) = %d entries in %v (best of 5)", len(paths), n, best)
	if best > 2*time.Second {
		t.Errorf("ByModules took %v", best)
	}
}

func BenchmarkByModulesRealDB(b *testing.B) {
	dir := realDB(b)
	paths := sample(realModules(b, dir), 100)
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			c, err := New(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.ByModules(ctx, paths); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		c, err := New(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.ByModules(ctx, paths); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold handful", func(b *testing.B) {
		handful := []string{"golang.org/x/text", "golang.org/x/net", "gopkg.in/yaml.v2", "github.com/gin-gonic/gin", "golang.org/x/crypto"}
		for b.Loop() {
			c, err := New(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.ByModules(ctx, handful); err != nil {
				b.Fatal(err)
			}
		}
	})
}
