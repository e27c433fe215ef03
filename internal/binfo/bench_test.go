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
