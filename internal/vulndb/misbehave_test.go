package vulndb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMisbehavingServer checks that every way a server can fail ends in a
// prompt, clear error that names the URL, with no cache to fall back to.
func TestMisbehavingServer(t *testing.T) {
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	bigJSON := append(append([]byte("["), bytes.Repeat([]byte(" "), 4000)...), ']')
	modulesGz := gz(readFixture(t, fixtureDir)["index/modules.json"])

	for _, tc := range []struct {
		name    string
		path    string // the endpoint that misbehaves
		handler http.HandlerFunc
		query   string // module to look up; default example.com/a
		wantErr error
		want    []string // substrings of the error
	}{
		{
			name: "stalled before headers", path: "/index/db.json.gz", handler: stall,
			wantErr: ErrTimeout, want: []string{"no complete answer within 1s"},
		},
		{
			name: "stalled in the body", path: "/index/modules.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write(modulesGz[:10])
				w.(http.Flusher).Flush()
				stall(w, r)
			},
			wantErr: ErrTimeout,
		},
		{
			name: "stalled entry", path: "/ID/GO-2099-0001.json.gz", handler: stall,
			wantErr: ErrTimeout, want: []string{"check the network"},
		},
		{
			name: "truncated gzip", path: "/index/modules.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(modulesGz[:len(modulesGz)/2]) },
			want:    []string{"decompress", "unexpected EOF"},
		},
		{
			name: "HTML instead of gzip", path: "/index/db.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html><body>Please log in</body></html>"))
			},
			want: []string{"neither gzip nor JSON", `"text/html"`},
		},
		{
			name: "gzipped HTML", path: "/index/modules.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(gz([]byte("<html></html>"))) },
			wantErr: ErrMalformed, want: []string{"index/modules.json"},
		},
		{
			name: "JSON of the wrong shape", path: "/index/vulns.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(gz([]byte(`{"vulns":[]}`))) },
			wantErr: ErrMalformed, want: []string{"index/vulns.json"},
		},
		{
			name: "HTTP 500", path: "/index/db.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
			want:    []string{"HTTP 500 Internal Server Error"},
		},
		{
			name: "HTTP 404 for the index", path: "/index/modules.json.gz",
			handler: http.NotFound, wantErr: ErrNotFound,
		},
		{
			name: "HTTP 404 for an indexed entry", path: "/ID/GO-2099-0002.json.gz",
			handler: http.NotFound, wantErr: ErrNotFound, want: []string{"HTTP 404"},
		},
		{
			name: "HTTP 503 for an entry", path: "/ID/GO-2099-0005.json.gz", query: "stdlib",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", 503) },
			want:    []string{"HTTP 503"},
		},
		{
			name: "oversized body", path: "/index/modules.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Transfer-Encoding", "chunked") // no Content-Length
				w.Write(bytes.Repeat([]byte{0x1f}, 5000))
			},
			wantErr: ErrTooLarge,
		},
		{
			name: "oversized Content-Length", path: "/index/modules.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000000")
				w.Write(bytes.Repeat([]byte{0x1f}, 100))
			},
			wantErr: ErrTooLarge, want: []string{"1000000 bytes announced"},
		},
		{
			name: "gzip bomb", path: "/index/modules.json.gz",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(gz(bigJSON)) },
			wantErr: ErrTooLarge, want: []string{"decompresses to more than 2048 bytes"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newV1Server(t, readFixture(t, fixtureDir))
			srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != tc.path {
					return false
				}
				tc.handler(w, r)
				return true
			})
			c := newHTTPClient(t, srv.URL, t.TempDir(), Options{
				RequestTimeout: time.Second, // generous: -race on a loaded 2-core machine
				MaxIndexBytes:  2048,
			})
			query := tc.query
			if query == "" {
				query = "example.com/a"
			}
			start := time.Now()
			got, err := c.ByModules(context.Background(), []string{query})
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("ByModules = %q, want an error", ids(got))
			}
			if elapsed > 5*time.Second {
				t.Errorf("failing took %v, want well under the 10s stall", elapsed)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error = %v, want %v", err, tc.wantErr)
			}
			for _, w := range append(tc.want, srv.URL+tc.path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
			t.Log(err)
		})
	}
}

// TestMisbehavingServerWithCache checks that a failing server after a good
// run leaves the cache intact and in use, whatever the failure.
func TestMisbehavingServerWithCache(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }},
		{"HTML", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>captive portal</html>")) }},
		{"stall", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{"modules index broken after a db.json change", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/index/db.json.gz" {
				w.Write(gz([]byte(`{"modified":"2030-01-01T00:00:00Z"}`)))
				return
			}
			w.Write(gz([]byte(`[{"path":"example.com/a","vulns":[{"id":"../../escape"}]}]`)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newV1Server(t, readFixture(t, fixtureDir))
			cacheDir := t.TempDir()
			opts := Options{RequestTimeout: time.Second} // generous: -race on a loaded 2-core machine
			ctx := context.Background()
			if _, err := newHTTPClient(t, srv.URL, cacheDir, opts).ByModules(ctx, []string{"example.com/a"}); err != nil {
				t.Fatal(err)
			}
			srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
				tc.handler(w, r)
				return true
			})
			c := newHTTPClient(t, srv.URL, cacheDir, opts)
			got, err := c.ByModules(ctx, []string{"example.com/a"})
			if err != nil || len(got) != 2 {
				t.Fatalf("ByModules = %q, %v; want the 2 cached entries", ids(got), err)
			}
			if w := c.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "using cached database from ") {
				t.Errorf("warnings = %q", w)
			}
			// The cache still holds the good index for the next run.
			c = newHTTPClient(t, srv.URL, cacheDir, opts)
			if got, err := c.ByModules(ctx, []string{"example.com/a"}); err != nil || len(got) != 2 {
				t.Errorf("next run: %q, %v", ids(got), err)
			}
		})
	}
}

// TestTraversal checks that an index naming entries outside the database
// fails without any request for or file at such a path.
func TestTraversal(t *testing.T) {
	for _, evil := range []string{"../../x", "..", "../../../etc/passwd", "a/../../b", `..\..\x`, "/abs", "GO-1\x00"} {
		t.Run(evil, func(t *testing.T) {
			files := readFixture(t, fixtureDir)
			q := strings.ReplaceAll(strings.ReplaceAll(evil, `\`, `\\`), "\x00", `\u0000`)
			files["index/modules.json"] = []byte(`[{"path":"example.com/a","vulns":[{"id":"GO-2099-0001"},{"id":"` + q + `"}]}]`)
			files["index/vulns.json"] = []byte(`[{"id":"GO-2099-0001"},{"id":"` + q + `"}]`)
			files["ID/"+evil+".json"] = []byte(`{"id":"` + q + `","affected":[{"package":{"name":"example.com/a"}}]}`)
			srv := newV1Server(t, files)

			root := t.TempDir()
			cacheDir := filepath.Join(root, "a", "b", "cache")
			c := newHTTPClient(t, srv.URL, cacheDir, Options{})
			_, err := c.ByModules(context.Background(), []string{"example.com/a"})
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "invalid entry ID") {
				t.Fatalf("error = %v, want ErrMalformed for the invalid ID", err)
			}
			if _, err := c.ByID(context.Background(), evil); !errors.Is(err, ErrInvalidID) {
				t.Errorf("ByID(%q) error = %v, want ErrInvalidID", evil, err)
			}
			for path := range srv.allHits() {
				if strings.HasPrefix(path, "/ID/") {
					t.Errorf("request for %s", path)
				}
			}
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if rel, _ := filepath.Rel(cacheDir, path); !filepath.IsLocal(rel) {
						t.Errorf("file written outside the cache: %s", path)
					}
				}
				return nil
			})
		})
	}
}

// TestCachePathRefusesEscapes tests the cache's own guard, which holds even
// if a caller skipped ValidID.
func TestCachePathRefusesEscapes(t *testing.T) {
	root := t.TempDir()
	c := &cache{dir: filepath.Join(root, "cache"), limits: limits{1 << 20, 1 << 20}}
	for _, endpoint := range []string{"ID/../../x", "ID/..", "../x", "ID/a/b", "../../../tmp/x"} {
		if err := c.write(endpoint, []byte("x")); err == nil {
			t.Errorf("write(%q) succeeded", endpoint)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Errorf("files under %s: %v", root, entries)
	}
}

// TestContentEncodingGzip checks a server that sends the .json.gz with
// Content-Encoding: gzip, which Go's transport decompresses on its own.
func TestContentEncodingGzip(t *testing.T) {
	files := readFixture(t, fixtureDir)
	srv := newV1Server(t, files)
	srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".gz")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz(files[name]))
		return true
	})
	c := newHTTPClient(t, srv.URL, t.TempDir(), Options{})
	got, err := c.ByModules(context.Background(), []string{"example.com/a"})
	if err != nil || len(got) != 2 {
		t.Fatalf("ByModules = %q, %v", ids(got), err)
	}
}

// TestCallerCancel checks that cancelling the caller's context stops a
// query promptly and is not mistaken for a network failure.
func TestCallerCancel(t *testing.T) {
	srv := newV1Server(t, readFixture(t, fixtureDir))
	srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	c := newHTTPClient(t, srv.URL, t.TempDir(), Options{RequestTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ByModules(ctx, []string{"example.com/a"})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("error = %v, want the caller's context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// manyEntries returns a database of n entries, GO-2099-10000 onwards,
// listed perModule at a time for modules example.com/h, example.com/h1,
// example.com/h2...
func manyEntries(n, perModule int) map[string][]byte {
	files := map[string][]byte{"index/db.json": []byte(`{"modified":"2024-05-01T10:00:00Z"}`)}
	var mods, vulns bytes.Buffer
	mods.WriteString(`[`)
	vulns.WriteString(`[`)
	for i := range n {
		id := fmt.Sprintf("GO-2099-%d", 10000+i)
		if i%perModule == 0 {
			if i > 0 {
				mods.WriteString(`]},`)
			}
			mod := "example.com/h"
			if i > 0 {
				mod += fmt.Sprint(i / perModule)
			}
			fmt.Fprintf(&mods, `{"path":%q,"vulns":[`, mod)
		} else {
			mods.WriteString(",")
		}
		fmt.Fprintf(&mods, `{"id":%q}`, id)
		if i > 0 {
			vulns.WriteString(",")
		}
		fmt.Fprintf(&vulns, `{"id":%q,"modified":"2024-05-01T10:00:00Z"}`, id)
		files["ID/"+id+".json"] = []byte(`{"id":"` + id + `","modified":"2024-05-01T10:00:00Z","summary":"s","affected":[{"package":{"name":"example.com/h","ecosystem":"Go"}}]}`)
	}
	mods.WriteString(`]}]`)
	vulns.WriteString(`]`)
	files["index/modules.json"] = mods.Bytes()
	files["index/vulns.json"] = vulns.Bytes()
	return files
}

// TestHostileServer checks the limits that keep a hostile server (or a
// mirror turned hostile) from exhausting memory, disk or time: each attack
// ends in a prompt error that names it, within the stated bounds.
func TestHostileServer(t *testing.T) {
	bomb := gz(make([]byte, 32<<20)) // 32 MiB of zeros in 32 KB
	trickle := func(w http.ResponseWriter, r *http.Request, data []byte) {
		for _, b := range data {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}
	for _, tc := range []struct {
		name    string
		files   map[string][]byte
		handler func(w http.ResponseWriter, r *http.Request, files map[string][]byte) bool
		opts    Options
		wantErr error
		want    []string
		// maxAlloc bounds what the query allocates; 0 means no check.
		maxAlloc uint64
		modules  []string // to ask for; default example.com/h
		maxQuery int64    // the client's MaxQueryBytes, when not 0
		// maxCached bounds the bytes of the entries cached; 0: none.
		maxCached int64
	}{
		{
			// 16 entries that each decompress to 32 MiB, fetched 8 at a
			// time: with 64 MiB limits this took 1.5 GB.
			name: "gzip-bombed entries", files: manyEntries(16, 16),
			handler: func(w http.ResponseWriter, r *http.Request, files map[string][]byte) bool {
				if !strings.HasPrefix(r.URL.Path, "/ID/") {
					return false
				}
				w.Write(bomb)
				return true
			},
			wantErr: ErrTooLarge, want: []string{"decompresses to more than 1048576 bytes"},
			maxAlloc: 64 << 20,
		},
		{
			name: "gzip-bombed index", files: manyEntries(1, 1),
			handler: func(w http.ResponseWriter, r *http.Request, files map[string][]byte) bool {
				if r.URL.Path != "/index/modules.json.gz" {
					return false
				}
				w.Write(bomb)
				return true
			},
			wantErr: ErrTooLarge, want: []string{"decompresses to more than 16777216 bytes", "index/modules.json.gz"},
			maxAlloc: 128 << 20,
		},
		{
			name: "20,000 entries for one module", files: manyEntries(20000, 20000),
			wantErr: ErrTooLarge, want: []string{`module "example.com/h" lists 20000 entries, more than 1000`},
		},
		{
			name: "60,000 entries in all", files: manyEntries(60000, 600),
			wantErr: ErrTooLarge, want: []string{"more than 50000 entries listed"},
		},
		{
			name: "6,000 entries for one query", files: manyEntries(6000, 1000),
			modules: []string{"example.com/h", "example.com/h1", "example.com/h2", "example.com/h3", "example.com/h4", "example.com/h5"},
			wantErr: ErrTooLarge, want: []string{"the index lists 6000 entries for these 6 modules, more than 5000"},
		},
		{
			// Entries of 300 KB, each under the limit for one entry,
			// are together over the limit for a query.
			name: "entries over the query's limit", files: manyEntries(64, 64),
			handler: func(w http.ResponseWriter, r *http.Request, files map[string][]byte) bool {
				id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/ID/"), ".json.gz")
				if !ok || !strings.HasPrefix(r.URL.Path, "/ID/") {
					return false
				}
				w.Write(gz([]byte(`{"id":"` + id + `","modified":"2024-05-01T10:00:00Z","details":"` + strings.Repeat("x", 300<<10) + `","affected":[{"package":{"name":"example.com/h"}}]}`)))
				return true
			},
			maxQuery: 2 << 20, maxCached: 2 << 20,
			wantErr: ErrTooLarge, want: []string{"the entries of this query take more than 2097152 bytes"},
		},
		{
			name: "trickling server", files: manyEntries(3, 3),
			handler: func(w http.ResponseWriter, r *http.Request, files map[string][]byte) bool {
				// 50 bytes/s: each response alone is in time (a
				// second or two), all of them together are not.
				name, _ := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".gz")
				trickle(w, r, gz(files[name]))
				return true
			},
			opts:    Options{RequestTimeout: 10 * time.Second, LoadTimeout: 1 * time.Second},
			wantErr: ErrTimeout, want: []string{"took longer than the 1s allowed (-db-timeout)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newV1Server(t, tc.files)
			if tc.handler != nil {
				srv.setOverride(func(w http.ResponseWriter, r *http.Request) bool { return tc.handler(w, r, tc.files) })
			}
			cacheDir := t.TempDir()
			c := newHTTPClient(t, srv.URL, cacheDir, tc.opts)
			if tc.maxQuery != 0 {
				c.maxQuery = tc.maxQuery
			}
			modules := tc.modules
			if modules == nil {
				modules = []string{"example.com/h"}
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			got, err := c.ByModules(context.Background(), modules)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("ByModules = %d entries, want an error", len(got))
			}
			t.Logf("%v after %v, %d MiB allocated, %d requests", err, elapsed.Round(time.Millisecond), (after.TotalAlloc-before.TotalAlloc)>>20, len(srv.allHits()))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error = %v, want %v", err, tc.wantErr)
			}
			for _, w := range append(tc.want, srv.URL) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q", w)
				}
			}
			if elapsed > 5*time.Second {
				t.Errorf("failing took %v", elapsed)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; tc.maxAlloc > 0 && alloc > tc.maxAlloc {
				t.Errorf("allocated %d MiB, want at most %d MiB", alloc>>20, tc.maxAlloc>>20)
			}
			// The index, then the entries that fit in the query's
			// limit and those in flight when it is passed: 8 at most.
			limit := 3 + 8 + 8
			if tc.maxQuery != 0 {
				limit = 3 + int(tc.maxQuery/(300<<10)) + 8
			}
			if n := len(srv.allHits()); n > limit {
				t.Errorf("%d requests, want at most %d", n, limit)
			}
			var cached int64
			files, _ := os.ReadDir(filepath.Join(cacheDir, entryDir))
			for _, f := range files {
				if fi, err := f.Info(); err == nil {
					cached += fi.Size()
				}
			}
			if cached > tc.maxCached || tc.maxCached == 0 && len(files) > 0 {
				t.Errorf("%d entries of %d bytes cached, want at most %d bytes", len(files), cached, tc.maxCached)
			}
		})
	}
}

// TestRedirects checks that redirects are followed only to the same
// scheme and host: a move within the server works, a redirect to another
// host or from https to plain http fails without a request reaching it.
func TestRedirects(t *testing.T) {
	files := readFixture(t, fixtureDir)
	other := newV1Server(t, files) // another host (port) serving the same database
	for _, tc := range []struct {
		name string
		tls  bool
		to   func(r *http.Request) string
		want string // "" for success
		// refused starts the URL the error names, other.URL when "".
		refused string
	}{
		{
			name: "same host, other path",
			to:   func(r *http.Request) string { return "/v1" + r.URL.Path },
		},
		{
			name: "other host",
			to:   func(r *http.Request) string { return other.URL + r.URL.Path },
			want: "reach follows redirects only within http://127.0.0.1",
		},
		{
			name: "https to http", tls: true,
			to:   func(r *http.Request) string { return other.URL + r.URL.Path },
			want: "reach follows redirects only within https://127.0.0.1",
		},
		{
			// Same host and port, only the scheme differs: a host check
			// alone would follow it (to vuln.go.dev, plain http).
			name: "https to http on the same host", tls: true,
			to:      func(r *http.Request) string { return "http://" + r.Host + "/v1" + r.URL.Path },
			want:    "reach follows redirects only within https://127.0.0.1",
			refused: "http://127.0.0.1:",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var moves atomic.Int32
			// The server serves the database under /v1/ and redirects
			// every other path.
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/"); ok {
					name, _ := strings.CutSuffix(rest, ".gz")
					if data, ok := files[name]; ok {
						w.Write(gz(data))
						return
					}
					http.NotFound(w, r)
					return
				}
				moves.Add(1)
				http.Redirect(w, r, tc.to(r), http.StatusFound)
			}))
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			before := len(other.allHits())
			c := newHTTPClient(t, srv.URL, t.TempDir(), Options{HTTPClient: srv.Client()})
			got, err := c.ByModules(context.Background(), []string{"example.com/a"})
			if tc.want == "" {
				if err != nil || len(got) != 2 || moves.Load() == 0 {
					t.Fatalf("ByModules = %q, %v after %d redirects; want 2 entries", ids(got), err, moves.Load())
				}
				return
			}
			refused := tc.refused
			if refused == "" {
				refused = other.URL
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "redirect to "+refused) {
				t.Errorf("error = %v, want a refused redirect to %s", err, refused)
			}
			if n := len(other.allHits()) - before; n > 0 {
				t.Errorf("%d requests reached the other host", n)
			}
			t.Log(err)
		})
	}
}
