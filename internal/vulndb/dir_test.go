package vulndb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/osv"
)

func ids(entries []*osv.Entry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

// byModulesCases hold for the fixture database whatever the source.
var byModulesCases = []struct {
	name     string
	modules  []string
	want     []string
	warnings []string // substrings, one per expected warning
}{
	{name: "one module", modules: []string{"example.com/a"}, want: []string{"GO-2099-0001", "GO-2099-0002"}},
	{name: "malformed entry skipped", modules: []string{"example.com/b"}, want: []string{"GO-2099-0002"},
		warnings: []string{"skipping malformed entry GO-2099-0003"}},
	{name: "entry under wrong ID skipped", modules: []string{"example.com/c"}, want: []string{},
		warnings: []string{`skipping malformed entry GO-2099-0004`}},
	{name: "stdlib", modules: []string{"stdlib"}, want: []string{"GO-2099-0005"}},
	{name: "deduplicated across modules", modules: []string{"example.com/a", "example.com/b", "stdlib", "example.com/unknown", "example.com/a"},
		want: []string{"GO-2099-0001", "GO-2099-0002", "GO-2099-0005"}, warnings: []string{"GO-2099-0003"}},
	{name: "unknown module", modules: []string{"example.com/unknown"}, want: []string{}},
	{name: "no modules", modules: nil, want: []string{}},
}

func checkByModules(t *testing.T, newClient func(t *testing.T) *Client) {
	t.Helper()
	for _, tc := range byModulesCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t)
			got, err := c.ByModules(context.Background(), tc.modules)
			if err != nil {
				t.Fatalf("ByModules(%q): %v", tc.modules, err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("ByModules(%q) = %q, want %q", tc.modules, ids(got), tc.want)
			}
			warnings := c.Warnings()
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d matching %q", warnings, len(tc.warnings), tc.warnings)
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
			for _, e := range got {
				if want := e.ID == "GO-2099-0002"; Withdrawn(e) != want {
					t.Errorf("Withdrawn(%s) = %v, want %v", e.ID, Withdrawn(e), want)
				}
			}
		})
	}
}

func TestDirByModules(t *testing.T) {
	checkByModules(t, func(t *testing.T) *Client {
		c, err := New(fixtureDir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func TestFileURLByModules(t *testing.T) {
	abs, err := filepath.Abs(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	checkByModules(t, func(t *testing.T) *Client {
		c, err := New("file://"+filepath.ToSlash(abs), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Source() != abs {
			t.Errorf("Source() = %q, want %q", c.Source(), abs)
		}
		return c
	})
}

// TestDirGzipOnly reads a directory that holds only the .json.gz files, as
// the official server's layout does.
func TestDirGzipOnly(t *testing.T) {
	checkByModules(t, func(t *testing.T) *Client {
		dir := t.TempDir()
		for name, data := range readFixture(t, fixtureDir) {
			p := filepath.Join(dir, filepath.FromSlash(name)+".gz")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, gz(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := New(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func TestDirByID(t *testing.T) {
	c, err := New(fixtureDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		id      string
		wantErr error
	}{
		{id: "GO-2099-0001"},
		{id: "GO-2099-0002"},
		{id: "GO-2099-0003", wantErr: ErrMalformed},
		{id: "GO-2099-0004", wantErr: ErrMalformed},
		{id: "GO-2099-7777", wantErr: ErrNotFound},
		{id: "../../index/db", wantErr: ErrInvalidID},
		{id: "", wantErr: ErrInvalidID},
	} {
		t.Run(tc.id, func(t *testing.T) {
			e, err := c.ByID(ctx, tc.id)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ByID(%q) error = %v, want %v", tc.id, err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.id) {
					t.Errorf("error %q does not name the ID", err)
				}
				return
			}
			if e.ID != tc.id {
				t.Errorf("ByID(%q).ID = %q", tc.id, e.ID)
			}
		})
	}
	e, err := c.ByID(ctx, "GO-2099-0001")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Affected[0].EcosystemSpecific.Packages[0].Symbols; !slices.Equal(got, []string{"Parse", "Parser.Parse"}) {
		t.Errorf("symbols = %q", got)
	}
}

// TestDirLookup finds entries by ID and by alias from the index alone.
func TestDirLookup(t *testing.T) {
	c, err := New(fixtureDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{"GO-2099-0001", []string{"GO-2099-0001"}},
		{"GO-2099-0003", []string{"GO-2099-0003"}}, // malformed entry, listed in the index
		{"CVE-2099-0005", []string{"GO-2099-0005"}},
		{"CVE-2099-0002", nil},
		{"GO-2099-7777", nil},
	} {
		got, err := c.Lookup(context.Background(), tc.id)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Lookup(%s) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
}

func TestDirInfo(t *testing.T) {
	c, err := New(fixtureDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(fixtureDir)
	want := Info{Source: abs, Modified: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Entries: 5, Modules: 4}
	if !info.Modified.Equal(want.Modified) {
		t.Errorf("Modified = %v, want %v", info.Modified, want.Modified)
	}
	info.Modified = want.Modified
	if info != want {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
}

// fixtureWith copies the fixture database to a temporary directory with
// the file name (slash-separated) holding content instead.
func fixtureWith(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	for n, data := range readFixture(t, fixtureDir) {
		if n == name {
			data = []byte(content)
		}
		p := filepath.Join(dir, filepath.FromSlash(n))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDirModified checks that Modified reads the modification time without
// index/vulns.json, which only ByID and Info need.
func TestDirModified(t *testing.T) {
	dir := fixtureWith(t, "index/vulns.json", "not json")
	c, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Modified(context.Background())
	if want := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Fatalf("Modified = %v, %v; want %v", got, err, want)
	}
	if _, err := c.Info(context.Background()); !errors.Is(err, ErrMalformed) {
		t.Errorf("Info with a malformed index/vulns.json: err = %v, want ErrMalformed", err)
	}
}

func TestDirMissingIndex(t *testing.T) {
	dir := t.TempDir()
	c, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ByModules(context.Background(), []string{"example.com/a"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "v1 layout") {
		t.Fatalf("error = %v, want ErrNotFound naming %s and the v1 layout", err, dir)
	}
}

func TestDirMalformedIndex(t *testing.T) {
	for _, tc := range []struct{ file, content string }{
		{"index/db.json", `<html>`},
		{"index/db.json", `{}`},
		{"index/modules.json", `{"path":"x"}`},
		{"index/modules.json", `[{"path":"example.com/a","vulns":[{"id":"../../x"}]}]`},
		{"index/modules.json", `[{"vulns":[]}]`},
		{"index/vulns.json", `[{"id":"GO-1/../../x"}]`},
	} {
		t.Run(tc.file+" "+tc.content, func(t *testing.T) {
			dir := fixtureWith(t, tc.file, tc.content)
			c, err := New(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ByModules(context.Background(), []string{"example.com/a"})
			if err == nil && tc.file == "index/vulns.json" { // only ByID and Info read it
				_, err = c.Info(context.Background())
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), filepath.FromSlash(tc.file)) {
				t.Fatalf("error = %v, want ErrMalformed naming %s", err, tc.file)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct{ source, want string }{
		{"", "empty"},
		{"ftp://example.com/db", "unsupported scheme"},
		{"https://", "no host"},
		{"https://vuln.go.dev?x=1", "query"},
		{"/does/not/exist", "no such file"},
		{file, "not a directory"},
		{"file://example.com/db", "local path"},
		{"http://vuln.go.dev", "plain http can be read and changed by anyone on the way; use https, or pass -insecure"},
		{"http://10.0.0.1:8080/db", "-insecure"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			_, err := New(tc.source, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%q) error = %v, want it to contain %q", tc.source, err, tc.want)
			}
		})
	}
}

// TestPlainHTTP checks which plain http sources are accepted: loopback
// ones, and others only with Options.Insecure.
func TestPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		source   string
		insecure bool
		ok       bool
	}{
		{"https://vuln.go.dev", false, true},
		{"http://vuln.go.dev", false, false},
		{"http://vuln.go.dev", true, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://127.8.9.10", false, true},
		{"http://localhost:8080/db", false, true},
		{"http://[::1]:8080", false, true},
		{"http://localhost.example.com", false, false},
		{"http://127.0.0.1.nip.io", false, false},
		{"http://[::ffff:10.0.0.1]", false, false},
	} {
		_, err := New(tc.source, Options{Insecure: tc.insecure, DisableCache: true})
		if (err == nil) != tc.ok {
			t.Errorf("New(%q, Insecure: %v) error = %v, want ok = %v", tc.source, tc.insecure, err, tc.ok)
		}
	}
}

func TestDefaultSource(t *testing.T) {
	t.Setenv(EnvDB, "")
	if got := DefaultSource(); got != DefaultURL {
		t.Errorf("DefaultSource() = %q, want %q", got, DefaultURL)
	}
	t.Setenv(EnvDB, "file:///srv/vulndb")
	if got := DefaultSource(); got != "file:///srv/vulndb" {
		t.Errorf("DefaultSource() with %s set = %q", EnvDB, got)
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"GO-2021-0113", true},
		{"GO-2026-12345", true},
		{"GHSA-ppp9-7jff-5vj2", true},
		{"", false},
		{"..", false},
		{"../../x", false},
		{"a/b", false},
		{`a\b`, false},
		{"GO-2021-0113..x", false},
		{".hidden", false},
		{"-flag", false},
		{"GO 2021", false},
		{"GO-2021-0113\x00", false},
		{strings.Repeat("A", 129), false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
