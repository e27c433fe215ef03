// Command readreq parses HTTP requests with net/http's ReadRequest: once
// from once and five times from five, through the same helper, so that
// every call of the standard library's vulnerable request parsing
// (textproto.Reader.ReadMIMEHeader, among others) passes the same
// immediate caller, net/http.readRequest. It is a fixture for counting
// calls per application callsite: the lines marked "call:NAME".
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strings"
)

const request = "GET /x HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"

func once() {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(request))) // call:once
	check(req, err)
}

func five() {
	for i := 0; i < 5; i++ {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(request))) // call:five
		check(req, err)
	}
}

func check(req *http.Request, err error) {
	if err != nil || req.Host != "example.com" {
		fmt.Fprintln(os.Stderr, "readreq:", req, err)
		os.Exit(1)
	}
}

func main() {
	once()
	five()
	fmt.Println("read 6 requests")
}
