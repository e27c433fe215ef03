// Package plain uses nothing vulnerable.
package plain

func Add(a, b int) int { return a + b }
