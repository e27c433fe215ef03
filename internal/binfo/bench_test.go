package binfo

import (
	"os"
	"testing"
)

// BenchmarkOpen opens the binary named by REACH_BENCH_BINARY (a large Go
// program, such as $(go env GOROOT)/pkg/tool/linux_amd64/compile).
func BenchmarkOpen(b *testing.B) {
	path := os.Getenv("REACH_BENCH_BINARY")
	if path == "" {
		b.Skip("set REACH_BENCH_BINARY to a large Go binary")
	}
	b.ReportAllocs()
	for b.Loop() {
		bin, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		bin.Close()
	}
}

// BenchmarkInlineSites asks for the sites of every inlined copy of every
// function of the binary named by REACH_BENCH_BINARY, as match does, with
// the per-function caches emptied before each round.
func BenchmarkInlineSites(b *testing.B) {
	path := os.Getenv("REACH_BENCH_BINARY")
	if path == "" {
		b.Skip("set REACH_BENCH_BINARY to a large Go binary")
	}
	bin, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer bin.Close()
	b.ReportAllocs()
	for b.Loop() {
		bin.mu.Lock()
		bin.inlRanges = nil
		bin.inlCode = nil
		bin.mu.Unlock()
		for fi := range bin.Funcs {
			f := &bin.Funcs[fi]
			for i := range f.Inlines {
				if _, err := bin.InlineSites(f, i); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
