// Command frames prints stacks taken inside inlined calls: for each, the
// PCs runtime.Callers returns and the frames runtime.CallersFrames makes of
// them. binfo's tests check that Binary.Frames symbolizes every PC alike.
package main

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
)

//go:noinline
func record(tag string) {
	pcs := make([]uintptr, 64)
	pcs = pcs[:runtime.Callers(2, pcs)]
	fmt.Printf("stack %s\n", tag)
	for _, pc := range pcs {
		fmt.Printf("pc %#x\n", pc)
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		fmt.Printf("frame %s\t%s\t%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
}

// leaf, mid and outer inline into one another.
func leaf(x int) int {
	if x > 0 {
		record("leaf")
	}
	return x * 2
}

func mid(x int) int { return leaf(x+1) + 1 }

func outer(x int) int { return mid(x) * 3 }

type counter struct{ n int }

func (c *counter) add(d int) int {
	c.n += d
	if c.n > 1 {
		record("method")
	}
	return c.n
}

func apply[E any](s []E, f func(E) E) []E {
	for i := range s {
		s[i] = f(s[i])
	}
	record("generic")
	return s
}

// index is inlined with a bounds check whose failure path the compiler
// moves away from the copy's main body.
func index(s []int, i int) int {
	if s[i] > 5 {
		record("index")
	}
	return s[i]
}

//go:noinline
func deferred() (n int) {
	defer func() {
		record("defer")
		n++
	}()
	return outer(len(os.Args))
}

func main() {
	fmt.Printf("main.main %#x\n", reflect.ValueOf(main).Pointer())
	n := outer(len(os.Args))
	var c counter
	n += c.add(n)
	n += len(apply([]int{1, 2}, func(x int) int { return x + n }))
	s := []int{n, 7, 9}
	for i := range s {
		n += index(s, i)
	}
	n += deferred()
	fmt.Println("done " + strconv.Itoa(n))
}
