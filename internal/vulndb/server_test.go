package vulndb

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const fixtureDir = "testdata/db"

// v1Server serves a database in the v1 layout from memory, gzipping each
// endpoint on the fly, and counts requests. Tests change its files and
// install a handler to misbehave.
type v1Server struct {
	*httptest.Server

	mu       sync.Mutex
	files    map[string][]byte // "index/db.json" -> uncompressed content
	hits     map[string]int    // URL path -> requests
	override func(w http.ResponseWriter, r *http.Request) bool
	inFlight int
	maxInFly int
}

func newV1Server(t *testing.T, files map[string][]byte) *v1Server {
	t.Helper()
	s := &v1Server{files: files, hits: make(map[string]int)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *v1Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	override := s.override
	s.inFlight++
	s.maxInFly = max(s.maxInFly, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if override != nil && override(w, r) {
		return
	}
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".gz")
	s.mu.Lock()
	data, found := s.files[name]
	s.mu.Unlock()
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(gz(data))
}

func (s *v1Server) set(name string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = data
}

func (s *v1Server) setOverride(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.override = f
}

func (s *v1Server) hitCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *v1Server) allHits() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.hits))
	for k, v := range s.hits {
		m[k] = v
	}
	return m
}

func (s *v1Server) maxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFly
}

// readFixture loads the files of a fixture database keyed by their path
// relative to dir, with slashes.
func readFixture(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatalf("read fixture %s: %v", dir, err)
	}
	return files
}

func gz(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}
