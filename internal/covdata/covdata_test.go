package covdata

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseProfile(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[blockKey]uint64
		err      bool
	}{
		{"blocks", "mode: atomic\na/b.go:7.77,11.72 1 4216\na/b.go:11.72,12.47 1 0\n",
			map[blockKey]uint64{{"a/b.go", 7, 77}: 4216, {"a/b.go", 11, 72}: 0}, false},
		{"repeated blocks add up", "mode: atomic\nx/y.go:1.2,3.4 1 2\nx/y.go:1.2,3.4 1 3\n",
			map[blockKey]uint64{{"x/y.go", 1, 2}: 5}, false},
		{"colon in path", "mode: set\nC:/w/x.go:1.2,3.4 1 1\n", map[blockKey]uint64{{"C:/w/x.go", 1, 2}: 1}, false},
		{"no count", "mode: atomic\na.go:1.2,3.4 1\n", nil, true},
		{"bad position", "mode: atomic\na.go:1,3.4 1 1\n", nil, true},
		{"no file", "1.2,3.4 1 1\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProfile(strings.NewReader(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			if len(got.blocks) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, n := range tt.want {
				if got.blocks[k].count != n {
					t.Errorf("%v: %d, want %d", k, got.blocks[k].count, n)
				}
			}
		})
	}
}

// TestMap maps a profile onto a small source file: each declared function
// gets the count of the block at its opening brace, an empty body the one
// just after it, Line the innermost block, and a function without a block
// is an error (the source is not what was built).
func TestMap(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n" + // 1
		"\n" + // 2
		"func F(x int) int {\n" + // 3
		"\tif x > 0 {\n" + // 4
		"\t\treturn 1\n" + // 5
		"\t}\n" + // 6
		"\treturn 0\n" + // 7
		"}\n" + // 8
		"\n" + // 9
		"type T[K any] struct{}\n" + // 10
		"\n" + // 11
		"func (*T[K]) M() {}\n" + // 12
		"\n" + // 13
		"func init() {\n" + // 14
		"\t_ = F(1)\n" + // 15
		"}\n" // 16
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	profile := "mode: atomic\n" +
		"example.com/p/p.go:3.19,4.11 1 7\n" +
		"example.com/p/p.go:4.11,6.3 1 5\n" +
		"example.com/p/p.go:7.2,7.10 1 2\n" +
		"example.com/p/p.go:12.19,12.20 0 3\n" +
		"example.com/p/p.go:14.13,16.2 1 1\n"
	prof, err := parseProfile(strings.NewReader(profile))
	if err != nil {
		t.Fatal(err)
	}
	if got := prof.Packages(); !slices.Equal(got, []string{"example.com/p"}) {
		t.Errorf("Packages() = %v", got)
	}
	pkg := Package{ImportPath: "example.com/p", Dir: dir, GoFiles: []string{"p.go"}}
	cov, err := prof.Map([]Package{pkg, {ImportPath: "example.com/other", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"F": 7, "T.M": 3, "init#1": 1}
	if got := cov.Calls["example.com/p"]; !maps.Equal(got, want) {
		t.Errorf("Calls = %v, want %v", got, want)
	}
	if !cov.Covered["example.com/p"] || cov.Covered["example.com/other"] {
		t.Errorf("Covered = %v, want example.com/p only", cov.Covered)
	}
	if !cov.Ran("example.com/p") {
		t.Error("Ran: no function ran")
	}
	file := filepath.Join(dir, "p.go")
	for _, tt := range []struct {
		line int
		n    uint64
		ok   bool
	}{{3, 7, true}, {5, 5, true}, {7, 2, true}, {15, 1, true}, {10, 0, false}} {
		if n, ok := cov.Line(file, tt.line); n != tt.n || ok != tt.ok {
			t.Errorf("Line(%d) = %d, %v; want %d, %v", tt.line, n, ok, tt.n, tt.ok)
		}
	}

	// F's first block missing: another source than the one built.
	prof, err = parseProfile(strings.NewReader(strings.Replace(profile, "example.com/p/p.go:3.19,4.11 1 7\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prof.Map([]Package{pkg}); err == nil || !strings.Contains(err.Error(), "no block for example.com/p.F") {
		t.Errorf("Map without F's block: %v, want an error naming F", err)
	}
}
