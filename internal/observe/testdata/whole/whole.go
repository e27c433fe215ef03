// Package whole is a fake module for reach's tests of entries without
// symbol data: the fixture database (testdata/wholedb) says every version
// below v1.3.0 is vulnerable, naming no package. Its initialization runs
// its own exported functions, a closure and a method, which must not count
// as the module being reached.
package whole

import "example.com/whole/internal/deep"

// Thing is what New makes.
type Thing struct {
	name string
	n    int
}

// New is exported, and the package's initialization calls it.
//
//go:noinline
func New(name string) *Thing { return &Thing{name: name} }

// Touch is an exported method that init calls.
//
//go:noinline
func (t *Thing) Touch() { t.n++ }

// String is called through fmt.Stringer by the standard library.
func (t *Thing) String() string { return "thing " + t.name }

// Work runs code of another package of the module.
//
//go:noinline
func (t *Thing) Work(n int) int { return deep.Do(n) + t.n }

// Default is made during initialization.
var Default = New("default")

// Hook is a function value made by a package-level initializer: its code
// runs only when someone calls it.
var Hook = func(x int) int { return x*7 + Default.n }

// Callback is a closure that init makes.
var Callback func() int

// Hidden is a method value of an unexported method, which init makes.
var Hidden func() int

//go:noinline
func (t *Thing) hidden() int { return t.n + 200 }

func init() {
	Default.Touch()
	Callback = func() int { return Default.n + 100 }
	Hidden = Default.hidden
	_ = Hook(1) // initialization may call it too
}

// Apply is generic: its code is its instantiations, such as
// Apply[go.shape.string].
func Apply[T any](xs []T, f func(T) int) int {
	n := 0
	for _, x := range xs {
		n += f(x)
	}
	return n
}

// Small is small enough to be inlined into its callers.
func Small(x int) int { return x + 1 }

var small = Small(1) // a copy inlined into initialization
