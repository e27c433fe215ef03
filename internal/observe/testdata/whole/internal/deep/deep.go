// Package deep is a package of the fake module example.com/whole; the
// fixture database also lists it without symbols (a whole package).
package deep

var base = Do(1) // initialization calls it

var offset = 3

// Do is exported.
//
//go:noinline
func Do(n int) int { return n*2 + offset }
