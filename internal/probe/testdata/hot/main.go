// Command hot is the probe engine's test and benchmark fixture. It reads
// commands from stdin, one per line, and answers each on stdout:
//
//	call N       calls work N times from caller; prints "ok SUM"
//	call2 N      calls work N times from caller2; prints "ok SUM"
//	par N G      runs caller(N) in G goroutines at once; prints "ok SUM"
//	bench N      calls work N times from caller; prints "ns ELAPSED"
//	exit         exits
//
// work has a stack frame (it calls helper), so it has a PUSH RBP site;
// helper is a frameless leaf, probed at its entry.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"time"
)

//go:noinline
func helper(x int) int { return x*3 + 1 }

//go:noinline
func work(x int) int { return helper(x) ^ x }

//go:noinline
func caller(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += work(i)
	}
	return s
}

//go:noinline
func caller2(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s -= work(i)
	}
	return s
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	fmt.Println("ready")
	for in.Scan() {
		var cmd string
		var n, g int
		fmt.Sscan(in.Text(), &cmd, &n, &g)
		switch cmd {
		case "call":
			fmt.Println("ok", caller(n))
		case "call2":
			fmt.Println("ok", caller2(n))
		case "par":
			var wg sync.WaitGroup
			sums := make([]int, g)
			for i := range sums {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					sums[i] = caller(n)
				}(i)
			}
			wg.Wait()
			s := 0
			for _, v := range sums {
				s += v
			}
			fmt.Println("ok", s)
		case "bench":
			start := time.Now()
			caller(n)
			fmt.Println("ns", time.Since(start).Nanoseconds())
		case "exit":
			return
		default:
			fmt.Println("unknown command", in.Text())
		}
	}
}
