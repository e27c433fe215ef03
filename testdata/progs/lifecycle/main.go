// Command lifecycle calls a vulnerable function (GO-2021-0113:
// golang.org/x/text/language.Parse) and then ends in the way its first
// argument asks, so that tests can check how reach run passes exit
// statuses, signals and panics on:
//
//	parse     call Parse once, print the tag, exit 0
//	exit N    call Parse, exit with status N
//	panic     call Parse, panic (exit status 2)
//	kill      call Parse, kill itself with SIGKILL
//	trap      call Parse, print "ready", wait for SIGTERM, print "terminated", exit 0
//	count N   call Parse N times, exit 0
//	wait      print "ready", wait for a line on standard input, call Parse, exit 0
//
// Parse is called from one place only, main.parse, so that its callsite is
// one line of this file.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/text/language"
)

//go:noinline
func parse(s string) string {
	tag, err := language.Parse(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return tag.String()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lifecycle parse | exit N | panic | kill | trap | count N | wait")
		os.Exit(64)
	}
	switch os.Args[1] {
	case "parse":
		fmt.Println(parse("en-US"))
	case "exit":
		parse("en-US")
		os.Exit(atoi(2))
	case "panic":
		parse("en-US")
		panic("lifecycle: panic after calling language.Parse")
	case "kill":
		parse("en-US")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "trap":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		parse("en-US")
		fmt.Println("ready")
		<-sigs
		fmt.Println("terminated")
	case "count":
		n := atoi(2)
		for i := 0; i < n; i++ {
			parse("en-US")
		}
		fmt.Println(n)
	case "wait":
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Println(parse("en-US"))
	default:
		fmt.Fprintf(os.Stderr, "lifecycle: unknown mode %q\n", os.Args[1])
		os.Exit(64)
	}
}

func atoi(i int) int {
	if len(os.Args) <= i {
		fmt.Fprintf(os.Stderr, "lifecycle %s: missing number\n", os.Args[1])
		os.Exit(64)
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifecycle %s: %v\n", os.Args[1], err)
		os.Exit(64)
	}
	return n
}
