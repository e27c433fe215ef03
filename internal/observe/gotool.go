package observe

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// ErrGoTool reports an executable of the Go toolchain itself: the go
// command and the tools it starts (compile, link, asm, vet, cover, cgo and
// the rest of $(go env GOTOOLDIR)). Run does not observe them unless
// Options.GoTools says so: `reach run -- go test ./...` watches the test
// binaries, not the compiler that builds them.
var ErrGoTool = errors.New("a program of the Go toolchain, not observed")

// goTool returns the main package of the executable r when it is a
// program of the Go toolchain: its build information names a main package
// under cmd/ and no main module (the toolchain's own programs are built
// from the standard library's source tree, outside any module).
func goTool(r io.ReaderAt) (string, bool) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return "", false
	}
	if bi.Main.Path != "" || !strings.HasPrefix(bi.Path, "cmd/") {
		return "", false
	}
	return bi.Path, true
}

// goToolError is the analysis of a program of the Go toolchain: it wraps
// ErrGoTool.
type goToolError struct {
	pkg string // the main package, such as cmd/compile
}

func (e *goToolError) Error() string { return e.pkg + ": " + ErrGoTool.Error() }
func (e *goToolError) Unwrap() error { return ErrGoTool }

// skippedTool records that a process ran the Go tool that err (an
// analysis failed with ErrGoTool) names, unobserved. The caller does not
// hold s.mu.
func (s *Session) skippedTool(err error) {
	var te *goToolError
	if !errors.As(err, &te) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goTools[path.Base(te.pkg)]++
}

// goToolsNote says which programs of the Go toolchain ran unobserved, and
// how many times each; "" when none did.
func (s *Session) goToolsNote() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.goTools) == 0 {
		return ""
	}
	names := make([]string, 0, len(s.goTools))
	for n := range s.goTools {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s (%d)", n, s.goTools[n])
	}
	return "not observed: the Go toolchain's own programs, which go build and go test start (processes: " +
		strings.Join(parts, ", ") + "); reach run -go-tools observes them too"
}
