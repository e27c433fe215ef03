package vulndb

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/testprog"
)

func newHTTPClient(t *testing.T, url, cacheDir string, opts Options) *Client {
	t.Helper()
	opts.CacheDir = cacheDir
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	c, err := New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHTTPByModules(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	checkByModules(t, func(t *testing.T) *Client {
		return newHTTPClient(t, srv.URL, t.TempDir(), Options{})
	})
}

func TestHTTPByModulesWithoutCache(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	checkByModules(t, func(t *testing.T) *Client {
		c := newHTTPClient(t, srv.URL+"/", "", Options{DisableCache: true})
		if c.cache != nil {
			t.Fatal("cache enabled despite DisableCache")
		}
		return c
	})
}

// TestHTTPFetchesOnlyWhatItNeeds checks that a query reads the index once
// and only the entries of the modules asked for, and fills the cache.
func TestHTTPFetchesOnlyWhatItNeeds(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	cacheDir := t.TempDir()
	c := newHTTPClient(t, srv.URL, cacheDir, Options{})
	ctx := context.Background()
	for range 3 {
		if _, err := c.ByModules(ctx, []string{"example.com/a"}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{
		"/index/db.json.gz":        1,
		"/index/modules.json.gz":   1,
		"/index/vulns.json.gz":     1,
		"/ID/GO-2099-0001.json.gz": 1,
		"/ID/GO-2099-0002.json.gz": 1,
	}
	if got := srv.allHits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
	for _, f := range []string{"meta.json", "index/db.json", "index/modules.json", "index/vulns.json", "ID/GO-2099-0001.json", "ID/GO-2099-0002.json"} {
		if _, err := os.Stat(filepath.Join(cacheDir, f)); err != nil {
			t.Errorf("cache file %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "ID", "GO-2099-0005.json")); err == nil {
		t.Error("cache holds an entry nobody asked for")
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.CachePath != cacheDir || info.Offline || info.CacheAge < 0 || info.CacheAge > time.Minute || info.Entries != 5 || info.Modules != 4 {
		t.Errorf("Info = %+v", info)
	}
}

// TestHTTPCacheReuse checks that a second client with the same cache
// checks db.json only, and reads the index and entries from the cache.
func TestHTTPCacheReuse(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	cacheDir := t.TempDir()
	ctx := context.Background()
	for i := range 2 {
		c := newHTTPClient(t, srv.URL, cacheDir, Options{})
		got, err := c.ByModules(ctx, []string{"example.com/a", "stdlib"})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if len(got) != 3 || len(c.Warnings()) != 0 {
			t.Fatalf("run %d: got %q, warnings %q", i, ids(got), c.Warnings())
		}
	}
	for path, want := range map[string]int{
		"/index/db.json.gz":        2,
		"/index/modules.json.gz":   1,
		"/index/vulns.json.gz":     1,
		"/ID/GO-2099-0001.json.gz": 1,
		"/ID/GO-2099-0005.json.gz": 1,
	} {
		if got := srv.hitCount(path); got != want {
			t.Errorf("GET %s: %d requests, want %d", path, got, want)
		}
	}
}

// TestHTTPRefresh checks that a new db.json "modified" refreshes the index
// and drops exactly the cached entries whose "modified" changed.
func TestHTTPRefresh(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	cacheDir := t.TempDir()
	ctx := context.Background()
	c := newHTTPClient(t, srv.URL, cacheDir, Options{})
	if _, err := c.ByModules(ctx, []string{"example.com/a"}); err != nil {
		t.Fatal(err)
	}

	// The database changes: GO-2099-0001 is modified, GO-2099-0006 is new.
	srv.set("index/db.json", []byte(`{"modified":"2024-06-01T00:00:00Z"}`))
	srv.set("index/modules.json", []byte(`[
{"path":"example.com/a","vulns":[{"id":"GO-2099-0001","modified":"2024-06-01T00:00:00Z"},{"id":"GO-2099-0002","modified":"2024-04-01T10:00:00Z"},{"id":"GO-2099-0006","modified":"2024-06-01T00:00:00Z"}]}]`))
	srv.set("index/vulns.json", []byte(`[
{"id":"GO-2099-0001","modified":"2024-06-01T00:00:00Z"},
{"id":"GO-2099-0002","modified":"2024-04-01T10:00:00Z"},
{"id":"GO-2099-0006","modified":"2024-06-01T00:00:00Z"}]`))
	srv.set("ID/GO-2099-0001.json", []byte(`{"id":"GO-2099-0001","modified":"2024-06-01T00:00:00Z","summary":"updated","affected":[{"package":{"name":"example.com/a","ecosystem":"Go"}}]}`))
	srv.set("ID/GO-2099-0006.json", []byte(`{"id":"GO-2099-0006","modified":"2024-06-01T00:00:00Z","summary":"new","affected":[{"package":{"name":"example.com/a","ecosystem":"Go"}}]}`))

	c = newHTTPClient(t, srv.URL, cacheDir, Options{})
	got, err := c.ByModules(ctx, []string{"example.com/a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[GO-2099-0001 GO-2099-0002 GO-2099-0006]"; fmt.Sprint(ids(got)) != want {
		t.Fatalf("after refresh: %q, want %s", ids(got), want)
	}
	if got[0].Summary != "updated" {
		t.Errorf("GO-2099-0001 summary = %q: the cached old copy was used", got[0].Summary)
	}
	for path, want := range map[string]int{
		"/index/db.json.gz":        2,
		"/index/modules.json.gz":   2,
		"/index/vulns.json.gz":     2,
		"/ID/GO-2099-0001.json.gz": 2, // changed: refetched
		"/ID/GO-2099-0002.json.gz": 1, // unchanged: from the cache
		"/ID/GO-2099-0006.json.gz": 1,
	} {
		if got := srv.hitCount(path); got != want {
			t.Errorf("GET %s: %d requests, want %d", path, got, want)
		}
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Modified.Equal(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)) || info.Entries != 3 {
		t.Errorf("Info after refresh = %+v", info)
	}
	// The cache now holds the new index.
	data, err := os.ReadFile(filepath.Join(cacheDir, "ID", "GO-2099-0001.json"))
	if err != nil || !strings.Contains(string(data), "updated") {
		t.Errorf("cached GO-2099-0001 = %q, %v; want the updated entry", data, err)
	}
}

// TestHTTPOffline checks that a client whose source is down falls back to
// the cache of an earlier run and says how old it is.
func TestHTTPOffline(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	cacheDir := t.TempDir()
	ctx := context.Background()
	c := newHTTPClient(t, srv.URL, cacheDir, Options{})
	if _, err := c.ByModules(ctx, []string{"example.com/a"}); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the network goes down

	c = newHTTPClient(t, srv.URL, cacheDir, Options{})
	c.now = func() time.Time { return time.Now().Add(3*time.Hour + time.Minute) }
	got, err := c.ByModules(ctx, []string{"example.com/a"})
	if err != nil {
		t.Fatalf("offline with a cache: %v", err)
	}
	if fmt.Sprint(ids(got)) != "[GO-2099-0001 GO-2099-0002]" {
		t.Errorf("offline: %q", ids(got))
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "using cached database from 3h ago: ") || !strings.Contains(w[0], srv.URL) {
		t.Errorf("warnings = %q, want one saying the cache is 3h old and naming %s", w, srv.URL)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Offline || info.CacheAge < 3*time.Hour || info.CacheAge > 4*time.Hour {
		t.Errorf("Info offline = %+v, want Offline and CacheAge ~3h", info)
	}

	// An entry that was never fetched cannot come from anywhere.
	_, err = c.ByModules(ctx, []string{"stdlib"})
	if err == nil || !strings.Contains(err.Error(), "GO-2099-0005") || !strings.Contains(err.Error(), "check the network") {
		t.Errorf("offline, uncached entry: error = %v", err)
	}
}

func TestHTTPOfflineWithoutCache(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	srv.Close()
	c := newHTTPClient(t, srv.URL, t.TempDir(), Options{})
	_, err := c.ByModules(context.Background(), []string{"example.com/a"})
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/index/db.json.gz") || !strings.Contains(err.Error(), "check the network") {
		t.Fatalf("error = %v, want one naming the URL and saying what to do", err)
	}
}

// TestHTTPConcurrency checks the bound on concurrent entry requests and
// that the client is safe for concurrent use (run with -race).
func TestHTTPConcurrency(t *testing.T) {
	files := map[string][]byte{"index/db.json": []byte(`{"modified":"2024-01-01T00:00:00Z"}`)}
	var mods, vulns []string
	var modules []string
	for i := range 40 {
		id := fmt.Sprintf("GO-2099-%04d", i)
		mod := fmt.Sprintf("example.com/m%d", i%4)
		mods = append(mods, mod)
		vulns = append(vulns, fmt.Sprintf(`{"id":%q,"modified":"2024-01-01T00:00:00Z"}`, id))
		files["ID/"+id+".json"] = fmt.Appendf(nil, `{"id":%q,"modified":"2024-01-01T00:00:00Z","affected":[{"package":{"name":%q,"ecosystem":"Go"}}]}`, id, mod)
		modules = append(modules, fmt.Sprintf(`{"path":%q,"vulns":[{"id":%q,"modified":"2024-01-01T00:00:00Z"}]}`, mod, id))
	}
	files["index/modules.json"] = []byte("[" + strings.Join(modules, ",") + "]")
	files["index/vulns.json"] = []byte("[" + strings.Join(vulns, ",") + "]")
	srv := newV1Server(t, files)
	srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/ID/") {
			time.Sleep(5 * time.Millisecond) // let requests overlap
		}
		return false
	})
	c := newHTTPClient(t, srv.URL, t.TempDir(), Options{MaxConcurrency: 3})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 4 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			got, err := c.ByModules(ctx, []string{fmt.Sprintf("example.com/m%d", i)})
			if err == nil && len(got) != 10 {
				err = fmt.Errorf("m%d: %d entries, want 10", i, len(got))
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := c.ByID(ctx, fmt.Sprintf("GO-2099-%04d", i))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := c.Info(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if srv.hitCount("/index/modules.json.gz") != 1 {
		t.Errorf("modules index fetched %d times, want once", srv.hitCount("/index/modules.json.gz"))
	}
	// Each ByModules call holds at most 3 requests and each ByID one.
	if got := srv.maxInFlight(); got > 4*3+4 {
		t.Errorf("%d requests in flight, want at most 16", got)
	}
	all, err := c.ByModules(ctx, mods)
	if err != nil || len(all) != 40 {
		t.Fatalf("all modules: %d entries, %v", len(all), err)
	}
}

func TestHTTPMaxConcurrency(t *testing.T) {
	files := readFixture(t, fixtureDir)
	srv := newV1Server(t, files)
	srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/ID/") {
			time.Sleep(20 * time.Millisecond)
		}
		return false
	})
	c := newHTTPClient(t, srv.URL, t.TempDir(), Options{MaxConcurrency: 1})
	if _, err := c.ByModules(context.Background(), []string{"example.com/a", "example.com/b", "example.com/c", "stdlib"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.maxInFlight(); got != 1 {
		t.Errorf("max requests in flight = %d with MaxConcurrency 1", got)
	}
}

// TestHTTPUnwritableCache checks that a cache that cannot be written costs
// a warning, not the results.
func TestHTTPUnwritableCache(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	c := newHTTPClient(t, srv.URL, filepath.Join(file, "cache"), Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	got, err := c.ByModules(context.Background(), []string{"example.com/a", "example.com/b"})
	if err != nil || len(got) != 2 {
		t.Fatalf("ByModules = %q, %v", ids(got), err)
	}
	w := c.Warnings()
	if len(w) != 2 || !strings.HasPrefix(w[0], "cannot use the database cache in "+filepath.Join(file, "cache")) ||
		!strings.HasPrefix(w[1], "skipping malformed entry GO-2099-0003") {
		t.Errorf("warnings = %q", w)
	}
	for _, want := range []string{"level=WARN", "component=vulndb", "cannot use the database cache", "skipping malformed entry GO-2099-0003"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestDefaultCacheDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	srv := newV1Server(t, readFixture(t, fixtureDir))
	c, err := New(srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "reach", "vulndb")
	if filepath.Dir(info.CachePath) != dir || !strings.HasPrefix(filepath.Base(info.CachePath), "127.0.0.1_") {
		t.Errorf("CachePath = %q, want 127.0.0.1_... under %s", info.CachePath, dir)
	}
	if _, err := os.Stat(filepath.Join(info.CachePath, "index", "modules.json")); err != nil {
		t.Error(err)
	}
	if a, b := sanitizeSource("https://a.example/x"), sanitizeSource("https://a.example_x"); a == b {
		t.Errorf("distinct sources share the cache %s", a)
	}
}

// TestCacheOfAnotherUser plays a user whose home root's cache ends up in
// (sudo keeps XDG_CACHE_HOME or HOME): they planted the cache directory
// with its index directory a link to a directory of root's. reach neither
// replaces root's modules.json there nor reads the user's cache: it warns
// and answers from the source.
func TestCacheOfAnotherUser(t *testing.T) {
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "modules.json")
	secret := []byte("root's own modules.json\n")
	if err := os.WriteFile(victim, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	home := testprog.SharedDir(t, testprog.OtherUID, 0o755)
	t.Setenv("XDG_CACHE_HOME", home)
	srv := newV1Server(t, readFixture(t, fixtureDir))
	dir := filepath.Join(home, "reach", "vulndb", sanitizeSource(srv.URL))
	if err := testprog.AsOther(t, func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.Symlink(victimDir, filepath.Join(dir, "index"))
	}); err != nil {
		t.Fatal(err)
	}
	c, err := New(srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ByModules(context.Background(), []string{"example.com/a", "example.com/b"})
	if err != nil || len(got) == 0 {
		t.Fatalf("ByModules = %q, %v", ids(got), err)
	}
	if w := c.Warnings(); len(w) == 0 || !strings.Contains(w[0], "cannot use the database cache in "+dir) || !strings.Contains(w[0], "owned by user") {
		t.Errorf("warnings = %q, want the cache refused", w)
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != string(secret) {
		t.Errorf("root's %s replaced: %q, %v", victim, data, err)
	}
	if ents, _ := os.ReadDir(victimDir); len(ents) != 1 {
		t.Errorf("files written through the link: %v", ents)
	}
}
