// Command inlinecopies calls vulnerable functions that the compiler
// inlines where their inline marks do not run once per call (issue 8):
//
//	andand N   calls check(i%2 == 1, ...) N times: `b && http.CanonicalHeaderKey(s)`,
//	           whose inline mark (go1.21.0) is the branch on b;
//	loop N     calls language.Parse N times in a loop written on one line,
//	           whose inline mark is the jump into the rotated loop;
//	serve N    calls http.ListenAndServe in serve, which never returns (its
//	           mark comes after the call), then makes N requests on one
//	           keep-alive connection (Header.WriteSubset, inlined into
//	           chunkWriter.writeHeader, has its mark on one branch only);
//	yaml N     parses a block sequence of N items with yaml.v2 v2.2.2, whose
//	           yaml_parser_fetch_block_entry has two first entries of the
//	           inlined yaml_parser_remove_simple_key, one leading to the
//	           other through a jump of the caller;
//	tls N      makes N HTTPS requests (TLS 1.3) to an in-process server:
//	           crypto/tls's quicSetReadSecret, inlined into
//	           sendServerParameters under `if c.quic != nil`, never runs,
//	           but with -cover (go1.21.0) a spill of its argument runs
//	           before the branch, at the copy's inline index.
//
// Each mode is deterministic, so that a build with Go's coverage counts
// the calls that a build without it makes. Do not gofmt this file: the
// loop must stay on one line.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"time"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

//go:noinline
func check(b bool, s string) bool {
	return b && http.CanonicalHeaderKey(s) != "X" // call:andand
}

func andand(n int) {
	k := 0
	for i := 0; i < n; i++ {
		if check(i%2 == 1, "x-foo") {
			k++
		}
	}
	fmt.Println("andand", k)
}

func loop(n int) {
	for i := 0; ; i++ { t, _ := language.Parse("en-US"); if i%50 == 0 { fmt.Println("loop", i, t) }; if last(i, n) { return } } // call:loop
}

//go:noinline
func last(i, n int) bool { return i == n-1 }

//go:noinline
func serve(a string) error { return http.ListenAndServe(a, nil) } // call:serve

func serveRequests(n int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	go serve(addr)
	var c net.Conn
	for try := 0; ; try++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if try == 500 {
			fail(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for i := 0; i < n; i++ {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			fail(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	fmt.Println("serve", n)
}

func parseYAML(n int) {
	doc := ""
	for i := 0; i < n; i++ {
		doc += "- item" + strconv.Itoa(i) + "\n"
	}
	var v []string
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		fail(err)
	}
	fmt.Println("yaml", len(v))
}

func tlsRequests(n int) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }))
	defer srv.Close()
	client := srv.Client()
	for i := 0; i < n; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			fail(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
	}
	fmt.Println("tls", n)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: inlinecopies andand|loop|serve|yaml|tls N"))
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "andand":
		andand(n)
	case "loop":
		loop(n)
	case "serve":
		serveRequests(n)
	case "yaml":
		parseYAML(n)
	case "tls":
		tlsRequests(n)
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
