// Package vuln is a fake vulnerable package for reach's observe tests. The
// fixture database says every version below v1.0.1 is vulnerable.
package vuln

import (
	"strconv"
	"sync"
)

var sink int

//go:noinline
func work(s string) int {
	n := 0
	for _, c := range s {
		n += int(c)
	}
	sink += n
	return n
}

// Direct is called directly by the application.
//
//go:noinline
func Direct(s string) int { return work(s) + 1 }

// Never is linked into the application but never called.
func Never(s string) int { return work(s) + 2 }

// Small is small enough to be inlined everywhere.
func Small(x int) int { return x*3 + 1 }

// Map is a generic function.
func Map[T any](xs []T, f func(T) string) int {
	n := 0
	for _, x := range xs {
		n += work(f(x))
	}
	return n
}

// List is a generic type.
type List[T any] struct{ items []T }

// Push is a method of a generic type.
func (l *List[T]) Push(x T) int {
	l.items = append(l.items, x)
	return work(strconv.Itoa(len(l.items)))
}

// T has a method used as a method value.
type T struct{ Name string }

// Method is called through a method value.
func (t T) Method() int { return work(t.Name) + 3 }

// Doer is implemented by Impl.
type Doer interface{ Do(string) int }

// Impl is called through an interface.
type Impl struct{ K int }

// Do implements Doer.
func (i *Impl) Do(s string) int { return work(s) + i.K }

// Deferred is called from a deferred closure.
func Deferred(s string) int { return work(s) + 4 }

// InitCall is called from package init.
func InitCall(s string) int { return work(s) + 5 }

// InGoroutine is called from a goroutine.
//
//go:noinline
func InGoroutine(s string) int { return work(s) + 6 }

// Child is called by child processes.
//
//go:noinline
func Child(s string) int { return work(s) + 7 }

// Attach is called before and after reach attaches.
//
//go:noinline
func Attach(s string) int { return work(s) + 8 }

// Closures runs, on each call, code the compiler generates inside it: a
// function literal called n times, a deferred call and a goroutine. Their
// executions are not calls of Closures.
//
//go:noinline
func Closures(n int) int {
	var wg sync.WaitGroup
	defer wg.Wait()
	s := 0
	add := func(x int) { s += work(strconv.Itoa(x)) }
	for i := 0; i < n; i++ {
		add(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sink += work("go")
	}()
	return s
}
