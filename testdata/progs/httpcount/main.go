// Command httpcount runs an HTTP server and a client in one process on
// 127.0.0.1: the client sends requests with bodies over keep-alive and
// fresh connections, reads the responses and closes them, then the server
// shuts down. It exercises net/http code that closures, defer wrappers and
// goroutine wrappers run inside of: (*body).Read, (*bodyEOFSignal).Read and
// Close, (*Server).Serve (a goroutine per connection). Its work is fixed,
// so that a run with Go's coverage and a run under reach make the same
// calls. It is a fixture for reach's -count.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: http.HandlerFunc(echo)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String() + "/"
	keepAlive := &http.Client{Transport: &http.Transport{}}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 4; i++ {
		post(keepAlive, url, i)
	}
	for i := 0; i < 3; i++ {
		post(fresh, url, i)
	}
	keepAlive.CloseIdleConnections()
	check(srv.Shutdown(context.Background()))
	if err := <-done; err != http.ErrServerClosed {
		check(err)
	}
	fmt.Println("7 requests served")
}

// echo answers with the request's body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	check(err)
	fmt.Fprintf(w, "got %s", b)
}

func post(c *http.Client, url string, i int) {
	resp, err := c.Post(url, "text/plain", strings.NewReader(fmt.Sprintf("request %d", i)))
	check(err)
	b, err := io.ReadAll(resp.Body)
	check(err)
	check(resp.Body.Close())
	if string(b) != fmt.Sprintf("got request %d", i) {
		check(fmt.Errorf("response %q to request %d", b, i))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpcount:", err)
		os.Exit(1)
	}
}
