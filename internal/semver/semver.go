// Package semver compares the versions of Go modules and of Go itself as
// semantic versions, and evaluates the version ranges of OSV entries.
//
// Module versions are the go command's: "v1.2.3", pseudo-versions such as
// "v0.0.0-20210101000000-abcdef123456" or "v1.2.4-0.20210101000000-abcdef123456",
// and "+incompatible" versions. They order by semantic-version precedence
// (golang.org/x/mod/semver), which already places each pseudo-version
// between the tagged versions it was derived from. OSV writes the same
// versions without the leading "v"; every function here accepts both forms.
//
// Go versions ("go1.21.0", "go1.21rc2") convert to semantic versions with
// FromGo before comparing them with the ranges of the "stdlib" and
// "toolchain" modules.
package semver

import (
	"strings"

	"golang.org/x/mod/semver"
)

// canon adds the leading "v" that OSV versions lack.
func canon(v string) string {
	if strings.HasPrefix(v, "v") {
		return v
	}
	return "v" + v
}

// Valid reports whether v is a semantic version, with or without its
// leading "v".
func Valid(v string) bool {
	return semver.IsValid(canon(v))
}

// Compare returns -1, 0 or +1 as v is lower than, equal to or higher than w
// in semantic-version precedence. Either may lack its leading "v". Build
// metadata such as "+incompatible" does not take part. An invalid version
// is lower than every valid one, and equal to other invalid ones.
func Compare(v, w string) int {
	return semver.Compare(canon(v), canon(w))
}

// WithV returns v with a leading "v", as Go modules write versions.
func WithV(v string) string {
	if v == "" {
		return ""
	}
	return canon(v)
}
