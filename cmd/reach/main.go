// Command reach reports which known vulnerabilities a Go program actually
// executes. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "reach: under construction")
	_ = context.Background()
	os.Exit(1)
}
