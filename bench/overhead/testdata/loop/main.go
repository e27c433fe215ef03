// Command loop calls golang.org/x/text/language.Parse (GO-2021-0113 in
// v0.3.5) in a tight loop, a fixed number of times, and prints how long the
// loop took. It is bench/overhead's fixture.
//
//	loop CALLS
//
// prints "calls CALLS loop_ns NS cpu_ns NS": the loop's wall time and the
// CPU time (user and system, every thread) the process spent in it.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/text/language"
)

var tags = []string{"en-US", "fr", "de-CH", "zh-Hant-TW", "sr-Latn", "pt-BR", "ja", "und"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: loop CALLS")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "loop: %q is not a call count\n", os.Args[1])
		os.Exit(2)
	}
	ok := 0
	cpu0 := cpuTime()
	start := time.Now()
	for i := range n {
		if _, err := language.Parse(tags[i%len(tags)]); err == nil {
			ok++
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if ok != n {
		fmt.Fprintf(os.Stderr, "loop: %d of %d tags did not parse\n", n-ok, n)
		os.Exit(1)
	}
	fmt.Printf("calls %d loop_ns %d cpu_ns %d\n", n, elapsed.Nanoseconds(), cpu.Nanoseconds())
}

// cpuTime returns the user and system time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "loop:", err)
		os.Exit(1)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
