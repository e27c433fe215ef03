// Command stdmail parses an e-mail address with net/mail. Built with an old
// toolchain (GOTOOLCHAIN=go1.21.0) it carries standard-library
// vulnerabilities such as GO-2024-2609 in net/mail.ParseAddress.
package main

import (
	"fmt"
	"net/mail"
	"os"
)

func main() {
	addr := "Gopher <gopher@example.com>"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	a, err := mail.ParseAddress(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(a.Name, a.Address)
}
