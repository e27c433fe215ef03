package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestGracefulShutdown: once Serve's context is done, a request in flight
// finishes, a long poll ends at once with 304, new connections are
// refused, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	slow := func(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
		mux.Handle("GET /slow", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			time.Sleep(time.Second)
			w.Write([]byte("done"))
		})))
	}
	dsn := sqliteDSN(t)
	st := openStore(t, dsn)
	admin, _ := st.CreateAdminToken(context.Background(), "a")
	enrolTok, _ := st.CreateEnrolToken(context.Background(), "e", nil)
	srv, err := New(context.Background(), Options{Store: st, Logger: testLogger(t), Mounts: []Mount{slow}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, stop := serveOn(t, srv, "")
	var agent fleet.EnrolResponse
	code, body := do(t, "POST", u+fleet.PathEnrol, enrolTok, fleet.EnrolRequest{Hostname: "h"})
	if code != 200 || json.Unmarshal(body, &agent) != nil {
		t.Fatalf("enrol: %d %s", code, body)
	}
	poll := longPoll(t, u, agent.Token, 0, 60)
	slowDone := make(chan int, 1)
	go func() {
		slowDone <- send("GET", u+"/slow", admin)
	}()
	<-entered
	time.Sleep(100 * time.Millisecond) // the long poll is waiting too
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	r := <-poll
	if r.code != 304 || time.Since(start) > time.Second {
		t.Errorf("long poll at shutdown: %d after %v, want 304 at once", r.code, time.Since(start))
	}
	if code := <-slowDone; code != 200 {
		t.Errorf("request in flight at shutdown: %d, want 200", code)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	t.Logf("shut down in %v with a request of 1s in flight", time.Since(start))
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "http://"), time.Second); err == nil {
		t.Errorf("the listener still accepts after shutdown")
	}
}

func TestTLS(t *testing.T) {
	cert := testprog.SelfSigned(t)
	st := openStore(t, sqliteDSN(t))
	admin, _ := st.CreateAdminToken(context.Background(), "a")
	enrolTok, _ := st.CreateEnrolToken(context.Background(), "e", nil)
	srv, err := New(context.Background(), Options{Store: st, Logger: testLogger(t), TLS: &tls.Config{Certificates: []tls.Certificate{cert.Cert}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, _ := serveOn(t, srv, "")
	if !strings.HasPrefix(u, "https://") {
		t.Fatalf("url %s", u)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp := request(t, c, "POST", u+fleet.PathEnrol, enrolTok, fleet.EnrolRequest{Hostname: "h"}, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("enrol over TLS: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	t.Logf("enrolled over %s", resp.Proto)
	resp = request(t, c, "POST", u+"/login", "", url.Values{"token": {admin}}.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	resp.Body.Close()
	var secure bool
	for _, ck := range resp.Cookies() {
		secure = ck.Name == sessionCookie && ck.Secure
	}
	if resp.StatusCode != 303 || !secure {
		t.Errorf("login over TLS: %d, cookies %v; want 303 and a Secure session cookie", resp.StatusCode, resp.Cookies())
	}
	// Plain HTTP to the TLS port gets no answer of the API.
	plain, err := http.Get(strings.Replace(u, "https://", "http://", 1) + fleet.PathConfig)
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode != 400 {
			t.Errorf("plain HTTP to the TLS listener: %d, want 400", plain.StatusCode)
		}
	}
	// A client that does not trust the certificate fails.
	if _, err := http.Get(u + fleet.PathConfig); err == nil {
		t.Errorf("a client without the certificate's CA connected")
	}
}

// reporter sends batches 1..n of agent to the URL url returns, retrying
// each (same seq) until it is acknowledged, as an agent does.
type reporter struct {
	agent      fleet.EnrolResponse
	url        func() string
	retries    atomic.Int64
	duplicates atomic.Int64
	acked      *atomic.Int64 // batches acknowledged, shared by the reporters
	codes      sync.Map      // status code -> count
}

func (rp *reporter) run(t *testing.T, n int, deadline time.Time) error {
	c := &http.Client{Timeout: 5 * time.Second}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		b, _ := json.Marshal(testBatch(rp.agent.AgentID, seq, rp.agent.AgentID+"-"+itoa(int64(seq)), seq))
		for {
			if time.Now().After(deadline) {
				return errors.New("reporter: deadline passed")
			}
			req, _ := http.NewRequest("POST", rp.url()+fleet.PathReport, strings.NewReader(string(b)))
			req.Header.Set("Authorization", "Bearer "+rp.agent.Token)
			resp, err := c.Do(req)
			if err != nil {
				rp.retries.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue
			}
			var br fleet.BatchResponse
			json.NewDecoder(resp.Body).Decode(&br)
			resp.Body.Close()
			v, _ := rp.codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			if resp.StatusCode == 200 {
				if br.Duplicate {
					rp.duplicates.Add(1)
				}
				rp.acked.Add(1)
				break
			}
			if resp.StatusCode != 503 && resp.StatusCode != 429 {
				return errors.New("reporter: status " + itoa(int64(resp.StatusCode)))
			}
			rp.retries.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// TestRestartWhileReporting: the server stops (gracefully, or cutting
// the connections in flight) and starts again, four times, while two agents send batches as fast as they can, retrying what
// got no answer. Every batch is stored once: nothing lost, nothing
// doubled.
func TestRestartWhileReporting(t *testing.T) {
	testRestartWhileReporting(t, sqliteDSN(t))
}

func testRestartWhileReporting(t *testing.T, dsn string) {
	f := newFixture(t, dsn, Options{})
	agents := []fleet.EnrolResponse{f.agent, f.enrolAgent("host-b")}
	st := openStore(t, dsn)
	var addr atomic.Value
	// start serves a new server at the address at (any port when ""); its
	// stop shuts it down gracefully, or, when abrupt, cuts the connections
	// in flight as a crash would. The abrupt one also loses the answer to
	// every 4th batch it stores, as a network that fails at the wrong
	// moment does: the agent retries a batch that is stored already.
	start := func(at string, abrupt bool) func() error {
		srv, err := New(context.Background(), Options{Store: st, Logger: testLogger(t), AgentRate: 1000, AgentBurst: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if !abrupt {
			u, stop := serveOn(t, srv, at)
			addr.Store(u)
			return func() error { err := stop(); srv.Close(); return err }
		}
		if at == "" {
			at = "127.0.0.1:0"
		}
		var ln net.Listener
		for range 50 {
			if ln, err = net.Listen("tcp", at); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: loseAnswers(srv.Handler(), 4)}}
		hs.Start()
		addr.Store(hs.URL)
		return func() error {
			hs.CloseClientConnections()
			srv.Close()
			hs.Close()
			return nil
		}
	}
	stop := start("", false)
	hostPort := strings.TrimPrefix(addr.Load().(string), "http://")
	const n = 80
	deadline := time.Now().Add(90 * time.Second)
	var wg sync.WaitGroup
	reps := make([]*reporter, len(agents))
	var acked atomic.Int64
	errs := make([]error, len(agents))
	for i, a := range agents {
		reps[i] = &reporter{agent: a, url: func() string { return addr.Load().(string) }, acked: &acked}
		wg.Go(func() { errs[i] = reps[i].run(t, n, deadline) })
	}
	// Restart after each fifth of the batches went in.
	for i := range 4 {
		for acked.Load() < int64((i+1)*n*len(agents)/5) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the agents find no server meanwhile
		stop = start(hostPort, i%2 == 0)
	}
	wg.Wait()
	stop()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("agent %d: %v", i, err)
		}
	}
	for i, rp := range reps {
		var codes []string
		rp.codes.Range(func(k, v any) bool {
			codes = append(codes, itoa(int64(k.(int)))+":"+itoa(v.(*atomic.Int64).Load()))
			return true
		})
		t.Logf("agent %d: %d retries, %d acknowledged as duplicates, codes %v", i, rp.retries.Load(), rp.duplicates.Load(), codes)
	}
	if reps[0].duplicates.Load()+reps[1].duplicates.Load() == 0 {
		t.Errorf("no batch was retried after it was stored: the test did not test that")
	}
	if got, want := countRows(t, dsn, "batches"), n*len(agents); got != want {
		t.Errorf("%d batches stored, want %d", got, want)
	}
	// Each batch's observation is its own instance: one sighting each.
	if got, want := countRows(t, dsn, "sightings"), n*len(agents); got != want {
		t.Errorf("%d sightings stored, want %d", got, want)
	}
	// Instance seq reported seq hits, on each agent, of one finding.
	if got, want := sqlInt(t, dsn, "SELECT SUM(hits) FROM findings"), len(agents)*n*(n+1)/2; got != want {
		t.Errorf("%d hits stored, want %d", got, want)
	}
}

// loseAnswers serves every nth report with h, then drops the connection
// instead of answering.
func loseAnswers(h http.Handler, n int64) http.Handler {
	var count atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != fleet.PathReport || count.Add(1)%n != 0 {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler)
	})
}
