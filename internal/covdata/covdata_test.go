package covdata

import (
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
