// Command app calls the fake vulnerable package in every way reach must
// observe. Lines marked "call:NAME" are the callsites the tests expect.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"example.com/vuln"
)

var sink int

func init() {
	sink += vuln.InitCall("init") // call:init
}

func main() {
	if len(os.Args) > 100 {
		sink += vuln.Never("never")
	}
	mode := "all"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "all":
		all()
	case "wait":
		wait()
	case "children":
		n, _ := strconv.Atoi(os.Args[2])
		children(n)
	case "child":
		time.Sleep(50 * time.Millisecond)
		sink += vuln.Child("child") // call:child
	case "echo":
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			fmt.Println("echo:", sc.Text())
		}
		fmt.Fprintln(os.Stderr, "stderr:done")
	case "exit":
		code, _ := strconv.Atoi(os.Args[2])
		os.Exit(code)
	case "sleep":
		time.Sleep(time.Minute)
	case "loop":
		n, _ := strconv.Atoi(os.Args[2])
		loop(n)
	case "loop3":
		n, _ := strconv.Atoi(os.Args[2])
		loop3(n)
	case "closures":
		n, _ := strconv.Atoi(os.Args[2])
		closures(n)
	case "loop2":
		n1, _ := strconv.Atoi(os.Args[2])
		n2, _ := strconv.Atoi(os.Args[3])
		loop2(n1, n2)
	}
}

func all() {
	direct()
	viaInline()
	generic()
	methodValue()
	viaIface(&vuln.Impl{K: 1})
	viaDefer()
	viaGoroutine()
}

func direct() {
	sink += vuln.Direct("direct") // call:direct
}

func viaInline() {
	sink += vuln.Small(sink) // call:inline
}

func generic() {
	sink += vuln.Map([]int{1, 2}, strconv.Itoa) // call:map
	var l vuln.List[string]
	sink += l.Push("x") // call:push
}

func methodValue() {
	f := vuln.T{Name: "mv"}.Method
	sink += f() // call:method
}

func viaIface(d vuln.Doer) {
	sink += d.Do("iface") // call:iface
}

func viaDefer() {
	defer func() {
		sink += vuln.Deferred("defer") // call:defer
	}()
	sink++
}

func viaGoroutine() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sink += vuln.InGoroutine("go") // call:goroutine
	}()
	wg.Wait()
}

func wait() {
	sink += vuln.Attach("before") // call:before
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	sc.Scan()
	sink += vuln.Attach("after") // call:after
	fmt.Println("done")
	sc.Scan()
}

func children(n int) {
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		c := exec.Command(os.Args[0], "child")
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func loop(n int) {
	for i := 0; i < n; i++ {
		sink += vuln.Direct("loop") // call:loop
	}
}

// loop2 calls Direct and the inlined Small from two callsites each, n1 and
// n2 times, and Direct twice from one line n1 times.
func loop2(n1, n2 int) {
	for i := 0; i < n1; i++ {
		sink += vuln.Direct("a") // call:loopA
		sink += vuln.Small(i)    // call:smallA
	}
	for i := 0; i < n2; i++ {
		sink += vuln.Direct("b") // call:loopB
		sink += vuln.Small(i)    // call:smallB
	}
	for i := 0; i < n1; i++ {
		sink += vuln.Direct("c") + vuln.Direct("d") // call:loopC
	}
}

var words = []string{"a", "bb", "ccc"}

// loop3 calls Impl.Do, inlined, n times.
func loop3(n int) {
	d := &vuln.Impl{K: 2}
	for i := 0; i < n; i++ {
		sink += d.Do(words[i%len(words)]) // call:doLoop
	}
}

// closures calls vuln.Closures n times; each call runs its closures,
// deferred call and goroutine.
func closures(n int) {
	for i := 0; i < n; i++ {
		sink += vuln.Closures(3) // call:closures
	}
}
