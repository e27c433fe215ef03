// Command server is bench/http's fixture: an HTTP server on loopback whose
// handler calls golang.org/x/text/language.Parse (GO-2021-0113 in v0.3.5)
// on every request.
//
//	server
//
// It listens on 127.0.0.1 at a port the kernel picks, prints
// "listening ADDR", serves GET /?lang=TAG with the canonical form of TAG,
// and exits when its standard input closes.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"golang.org/x/text/language"
)

func handle(w http.ResponseWriter, r *http.Request) {
	tag, err := language.Parse(r.URL.Query().Get("lang"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, tag.String())
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if err := http.Serve(ln, http.HandlerFunc(handle)); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
