// Command calls makes a known number of calls of functions of every kind
// coverage and reach see differently: closures, methods on value and
// pointer receivers, method values, generic functions, loops, empty
// bodies, deferred closures and init functions. coverage_test.go checks
// that coverage's count of each function's first block is its number of
// calls.
package main

import (
	"fmt"
	"os"
)

var sink int

func init() { sink++ }

// F calls its closure n times.
func F(n int) {
	add := func(i int) { sink += i }
	for i := 0; i < n; i++ {
		add(i)
	}
}

// Loop spends its time in a loop; its first block still runs once a call.
func Loop(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i
	}
	return s
}

type T struct{ v int }

func (t T) M() int { return t.v }

func (t *T) P() { t.v++ }

func G[E any](e E) string { return fmt.Sprint(e) }

func Empty() {}

// D defers a closure.
func D() {
	defer func() { sink++ }()
	sink--
}

func Never() { sink = -1 }

func main() {
	for i := 0; i < 3; i++ {
		F(10)
	}
	for i := 0; i < 5; i++ {
		sink += Loop(100)
	}
	t := T{1}
	p := &t
	sink += t.M() + t.M() // 2 by value
	sink += p.M()         // 1 through the pointer wrapper
	m := t.M
	sink += m() // 1 through a method value
	for i := 0; i < 4; i++ {
		p.P()
	}
	_ = G(1) + G(2) + G("three")
	Empty()
	Empty()
	D()
	D()
	if len(os.Args) > 5 {
		Never()
	}
	fmt.Println(sink)
}
