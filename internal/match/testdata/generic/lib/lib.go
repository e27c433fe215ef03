// Package lib has the compiled forms match must recognise: generic types
// and functions, closures, method values and small inlinable functions.
package lib

import "fmt"

type List[T any] struct{ xs []T }

func (l *List[T]) Push(x T) {
	l.xs = append(l.xs, x)
	func() { fmt.Sprint(x) }()
}

func (l List[T]) Len() int { return len(l.xs) }

func Map[T, U any](xs []T, f func(T) U) []U {
	var out []U
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

type Parser struct{ n int }

func (p *Parser) Parse(s string) int { p.n += len(s); return p.n }

func (p *Parser) ParseAll(ss []string) int {
	for _, s := range ss {
		p.Parse(s)
	}
	return p.n
}

// Small enough to be inlined into every caller.
func Twice(x int) int { return 2 * x }
