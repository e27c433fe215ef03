// Command httpserve is an HTTP server on 127.0.0.1 (a random port, printed
// as "listening ADDR") whose handlers call vulnerable functions of
// golang.org/x/text v0.3.5 (GO-2021-0113) with the request's
// Accept-Language header: /parse calls language.Parse and /before calls
// language.ParseAcceptLanguage. It is a fixture for reach attach.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/text/language"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/parse", handleParse)
	mux.HandleFunc("/before", handleBefore)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func handleParse(w http.ResponseWriter, r *http.Request) {
	tag, err := language.Parse(r.Header.Get("Accept-Language"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, tag)
}

func handleBefore(w http.ResponseWriter, r *http.Request) {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, tags)
}
