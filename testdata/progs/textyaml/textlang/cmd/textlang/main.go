// Command textlang is the program built from package textlang, whose test
// binary reach's tests compare with it.
package main

import (
	"fmt"
	"os"

	"example.com/textyaml/textlang"
)

func main() {
	tag, err := textlang.Lang("lang: en-US\n")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(tag)
}
