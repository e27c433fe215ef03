// Command wholeapp uses the fake module example.com/whole, whose entries in
// the fixture database have no symbol data, in one way per mode (its first
// argument): "init" runs only the module's initialization, every other
// mode runs code of the module after it.
package main

import (
	"fmt"
	"os"

	"example.com/whole"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wholeapp init|small|hook|callback|hidden|generic|stringer|work")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "init":
	case "small":
		fmt.Println(whole.Small(len(os.Args))) // an inlined copy: no call into the module
	case "hook":
		fmt.Println(whole.Hook(2)) // a closure made during initialization
	case "callback":
		fmt.Println(whole.Callback()) // a closure init made
	case "generic":
		fmt.Println(whole.Apply(os.Args, func(s string) int { return len(s) })) // an instantiation
	case "hidden":
		fmt.Println(whole.Hidden()) // a method value of an unexported method
	case "stringer":
		fmt.Println(whole.Default) // fmt calls (*Thing).String
	case "work":
		fmt.Println(whole.Default.Work(3)) // and package deep
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
	fmt.Println("done")
}
