package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// sqliteDSN returns the path of a new SQLite store in a temporary
// directory.
func sqliteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "reach.db")
}

// openStore opens the store at dsn for the test.
func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testLogger writes the server's log to the test's.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fixture is a server on a store with an admin token, an enrolment token
// and an enrolled agent.
type fixture struct {
	t     testing.TB
	dsn   string
	store *store.Store
	srv   *Server
	url   string
	admin string // admin token
	enrol string // enrolment token
	agent fleet.EnrolResponse
}

// newFixture starts a server on dsn (a new SQLite store when ""), served
// by httptest, with opts (Store and Logger set here).
func newFixture(t testing.TB, dsn string, opts Options) *fixture {
	t.Helper()
	if dsn == "" {
		dsn = sqliteDSN(t)
	}
	f := &fixture{t: t, dsn: dsn, store: openStore(t, dsn)}
	f.srv, f.url = startServer(t, f.store, opts)
	ctx := context.Background()
	var err error
	if f.admin, err = f.store.CreateAdminToken(ctx, "test-admin"); err != nil {
		t.Fatal(err)
	}
	if f.enrol, err = f.store.CreateEnrolToken(ctx, "test-enrol", nil); err != nil {
		t.Fatal(err)
	}
	f.agent = f.enrolAgent("host-a")
	return f
}

// startServer serves a new server on st with httptest until the test
// ends.
func startServer(t testing.TB, st *store.Store, opts Options) (*Server, string) {
	t.Helper()
	opts.Store = st
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	srv, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close() // ends the long polls first
		hs.Close()
	})
	return srv, hs.URL
}

func (f *fixture) enrolAgent(host string) fleet.EnrolResponse {
	f.t.Helper()
	var resp fleet.EnrolResponse
	code, body := do(f.t, "POST", f.url+fleet.PathEnrol, f.enrol, fleet.EnrolRequest{Hostname: host, ReachVersion: "test"})
	if code != http.StatusOK {
		f.t.Fatalf("enrol: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.AgentID == "" || resp.Token == "" {
		f.t.Fatalf("enrol: %s: %v", body, err)
	}
	return resp
}

// do sends a request with a bearer token (none when "") and body (JSON
// of it, or as is when []byte or string; none when nil), and returns the
// status code and body.
func do(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	resp := request(t, http.DefaultClient, method, url, token, body, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// request sends a request as do does, with extra headers, and returns the
// response.
func request(t testing.TB, c *http.Client, method, url, token string, body any, header http.Header) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// testBatch returns a batch of agent with seq: one observation by
// instance of service "svc" on host, whose binary has one reached finding
// with a callsite, hit hits times so far.
func testBatch(agent string, seq uint64, instance string, hits uint64) *fleet.Batch {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &fleet.Batch{
		AgentID: agent,
		Seq:     seq,
		Sent:    now,
		Agent:   fleet.AgentState{Hostname: "host-a", ReachVersion: "test", Processes: 1, Probes: 2},
		Observations: []fleet.Observation{{
			Instance: instance,
			Host:     "host-a",
			Service:  "svc",
			Mode:     "agent",
			PIDs:     []int{42},
			Started:  now.Add(-time.Minute),
			Binary: &report.Binary{
				Path:       "/usr/bin/svc",
				BuildID:    "build-1",
				GoVersion:  "go1.22.0",
				MainModule: "example.com/svc",
				Modules:    []report.Module{{Path: "golang.org/x/text", Version: "v0.3.5"}},
				Findings: []*report.Finding{{
					OSV:          "GO-2021-0113",
					Summary:      "Out-of-bounds read in golang.org/x/text/language",
					Module:       "golang.org/x/text",
					Version:      "v0.3.5",
					FixedVersion: "v0.3.7",
					Status:       report.Reached,
					Symbols: []*report.Symbol{{
						Package:   "golang.org/x/text/language",
						Name:      "Parse",
						Status:    report.Reached,
						Hits:      hits,
						FirstSeen: &now,
						LastSeen:  &now,
						Callsites: []*report.Callsite{{Function: "main.main", File: "/src/main.go", Line: 12, Hits: hits}},
					}},
				}},
			},
		}},
	}
}

// countRows counts the rows of table in the store at dsn, read by a
// connection of its own (not through the store's queries).
func countRows(t *testing.T, dsn, table string) int {
	t.Helper()
	return sqlInt(t, dsn, "SELECT COUNT(*) FROM "+table)
}

// sqlInt runs a query of one number on the store at dsn, by a connection
// of its own.
func sqlInt(t *testing.T, dsn, query string) int {
	t.Helper()
	driver, name := "sqlite", dsn
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// rowCounts counts the rows of the tables a request could write.
func rowCounts(t *testing.T, dsn string) map[string]int {
	m := make(map[string]int)
	for _, table := range []string{"agents", "batches", "binaries", "vulns", "findings", "sightings", "configs", "triage_log", "triage_rules", "enrol_tokens", "admin_tokens"} {
		m[table] = countRows(t, dsn, table)
	}
	return m
}

// serveOn serves srv on a new loopback listener (the address addr, or
// any port when "") until the returned stop is called; stop returns
// Serve's error.
func serveOn(t *testing.T, srv *Server, addr string) (url string, stop func() error) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a port just freed may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	scheme := "http"
	if srv.opts.TLS != nil {
		scheme = "https"
	}
	var once bool
	var serveErr error
	stop = func() error {
		if !once {
			once = true
			cancel()
			serveErr = <-errc
		}
		return serveErr
	}
	t.Cleanup(func() { stop() })
	return fmt.Sprintf("%s://%s", scheme, ln.Addr()), stop
}

// send is do for other goroutines than the test's: it returns the status
// code, or -1 when the request failed.
func send(method, url, token string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return -1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
