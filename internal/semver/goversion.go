package semver

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
)

// ErrGoVersion reports a Go version that FromGo cannot read.
var ErrGoVersion = errors.New("unrecognised Go version")

// FromGo converts a Go version, as the toolchain writes it into binaries
// (runtime.Version()), to the semantic version the Go vulnerability database
// uses for the "stdlib" and "toolchain" modules, with a leading "v":
//
//	go1.21.0                 v1.21.0
//	go1.21                   v1.21.0   (also go1.20, go1.9: the x.y.0 release)
//	go1                      v1.0.0
//	go1.21rc2                v1.21.0-rc.2
//	go1.9.2beta1             v1.9.2-beta.1
//	go1.21.0 X:boringcrypto  v1.21.0   (anything after the first space, such
//	                                    as GOEXPERIMENT tags, is ignored)
//	go1.21.0-bigcorp         v1.21.0   (a vendor's suffix after "-" or "+"
//	                                    is ignored)
//	devel go1.22-abc123 ...  v1.22.0-0
//
// A development build ("devel go1.22-...") is somewhere between the previous
// release and go1.22.0, and its exact set of fixes is unknown. It converts
// to v1.22.0-0, the lowest prerelease of the release it leads to: the Go
// database opens each release's ranges at "1.22.0-0", so the build counts as
// affected by everything that affects go1.22 prereleases, and by everything
// fixed only in go1.22.0 or later. That over-reports rather than misses.
// A devel version that names no release ("devel +abc123") is an error.
func FromGo(v string) (string, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return "", fmt.Errorf("go version %q: %w", v, ErrGoVersion)
	}
	if fields[0] == "devel" {
		if len(fields) < 2 || !strings.HasPrefix(fields[1], "go") {
			return "", fmt.Errorf("go version %q: development build without a release version: %w", v, ErrGoVersion)
		}
		rel, err := release(trimSuffix(fields[1]))
		if err != nil || semver.Prerelease(rel) != "" {
			return "", fmt.Errorf("go version %q: development build of %q: %w", v, fields[1], ErrGoVersion)
		}
		return rel + "-0", nil
	}
	rel, err := release(trimSuffix(fields[0]))
	if err != nil {
		return "", fmt.Errorf("go version %q: %w", v, err)
	}
	return rel, nil
}

// trimSuffix removes a vendor or development suffix ("-bigcorp", "+auto",
// "-abc123 Tue ...") from a Go version.
func trimSuffix(s string) string {
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		return s[:i]
	}
	return s
}

// release converts a Go release tag such as "go1.21rc2" to a semantic
// version.
func release(tag string) (string, error) {
	rest, ok := strings.CutPrefix(tag, "go")
	if !ok {
		return "", ErrGoVersion
	}
	// Split off the prerelease ("beta1", "rc2").
	pre := ""
	for _, kind := range []string{"beta", "rc"} {
		if i := strings.Index(rest, kind); i >= 0 {
			n := rest[i+len(kind):]
			if !isNumber(n) {
				return "", ErrGoVersion
			}
			pre = "-" + kind + "." + n
			rest = rest[:i]
			break
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) > 3 {
		return "", ErrGoVersion
	}
	for _, p := range parts {
		if !isNumber(p) {
			return "", ErrGoVersion
		}
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	out := "v" + strings.Join(parts, ".") + pre
	if !semver.IsValid(out) {
		return "", ErrGoVersion
	}
	return out, nil
}

// isNumber reports whether s is a non-empty decimal number without leading
// zeros.
func isNumber(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
