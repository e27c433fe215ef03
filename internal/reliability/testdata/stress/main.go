// Command stress calls the fake vulnerable package example.com/hazard from
// 64 goroutines under heavy allocation and deep recursion, so that the
// garbage collector runs and goroutine stacks grow, move and shrink while
// reach watches. Every round does the same fixed amount of work and prints
// its checksum, which must not depend on whether reach is watching.
//
//	stress rounds N    run N rounds, then exit 0
//	stress until-eof   print "ready", run rounds until standard input ends
//	stress exit MS     work for MS milliseconds, then exit 0
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"example.com/hazard"
)

const (
	workers = 64
	iters   = 400
)

var sink atomic.Uint64

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stress rounds N | until-eof | exit MS")
		os.Exit(2)
	}
	if len(os.Args) > 100 {
		sink.Add(hazard.Unused(1))
	}
	switch os.Args[1] {
	case "rounds":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for i := 1; i <= n; i++ {
			fmt.Printf("round %d checksum %016x\n", i, round())
		}
	case "until-eof":
		var eof atomic.Bool
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
			}
			eof.Store(true)
		}()
		fmt.Println("ready")
		for i := 1; !eof.Load(); i++ {
			fmt.Printf("round %d checksum %016x\n", i, round())
		}
	case "exit":
		ms, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for time.Now().Before(deadline) {
			sink.Add(work(0, 8))
		}
	default:
		fmt.Fprintf(os.Stderr, "stress: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// round runs the workers and folds their results in a fixed order.
func round() uint64 {
	var wg sync.WaitGroup
	res := make([]uint64, workers)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = work(i, iters)
		}(i)
	}
	wg.Wait()
	h := uint64(14695981039346656037)
	for _, r := range res {
		h = hazard.Mix(h, r)
	}
	return h
}

// work allocates, keeps some of it alive, recurses deeply and calls the
// vulnerable functions, directly and through inlined copies.
func work(id, n int) uint64 {
	var keep [32][]byte
	h := uint64(id + 1)
	for j := 0; j < n; j++ {
		buf := make([]byte, 64+(id*131+j*17)%2048)
		for k := range buf {
			buf[k] = byte(k*7 + j + id)
		}
		keep[j%len(keep)] = buf
		h = hazard.Mix(h, hazard.Digest(buf))
		m := map[int]string{j: strconv.Itoa(j), id: strconv.Itoa(id)}
		h = hazard.Mix(h, uint64(len(m[j])+len(m[id])))
		if j%16 == 0 {
			h = recurse(200+(id*7+j)%600, h)
		}
	}
	for _, b := range keep {
		h = hazard.Mix(h, uint64(len(b)))
	}
	return h
}

// recurse grows the goroutine stack by depth frames of about 100 bytes
// and calls the vulnerable functions at the bottom and on the way back.
func recurse(depth int, h uint64) uint64 {
	var pad [12]uint64
	pad[depth%len(pad)] = h
	if depth == 0 {
		return hazard.Leaf(h)
	}
	r := recurse(depth-1, hazard.Mix(h, uint64(depth)))
	return hazard.Mix(r, pad[depth%len(pad)])
}
