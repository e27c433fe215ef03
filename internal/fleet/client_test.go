package fleet

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

const testToken = "reach_agent_s3cr3t-must-not-leak"

// recorder is a server that answers the requests of a test in turn with
// the handlers given, the last one for every request after, and keeps the
// bodies it got.
type recorder struct {
	mu       sync.Mutex
	handlers []http.HandlerFunc
	bodies   [][]byte
	auth     []string
	times    []time.Time
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	n := len(rec.bodies)
	rec.bodies = append(rec.bodies, body)
	rec.auth = append(rec.auth, r.Header.Get("Authorization"))
	rec.times = append(rec.times, time.Now())
	h := rec.handlers[min(n, len(rec.handlers)-1)]
	rec.mu.Unlock()
	h(w, r)
}

func (rec *recorder) requests() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.bodies)
}

func status(code int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// ack acknowledges a batch with its Seq.
func ack(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(BatchResponse{Updates: 1, ConfigVersion: 7})
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// cutShort answers 200 with half a JSON body.
func cutShort(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "100")
	io.WriteString(w, `{"seq": 1, "upd`)
}

func testClient(t *testing.T, h http.Handler) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	c.MinBackoff, c.MaxBackoff = time.Millisecond, 5*time.Millisecond
	c.Timeout = 5 * time.Second
	return c, srv
}

func testBatch() *Batch {
	return &Batch{AgentID: "agent-1", Seq: 42, Sent: time.Now().UTC(), Agent: AgentState{Hostname: "h"}}
}

// TestSendRetries sends one batch to servers that misbehave: transient
// failures are retried with the very same body (same Seq), others not,
// and the error names the server and says what to do.
func TestSendRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handlers []http.HandlerFunc
		attempts int    // requests the server gets
		wantErr  string // "" for success
		status   int    // of the *HTTPError
	}{
		{"ok", []http.HandlerFunc{ack}, 1, "", 0},
		{"503 twice then 200", []http.HandlerFunc{status(503, "down"), status(503, "down"), ack}, 3, "", 0},
		{"500 then 200", []http.HandlerFunc{status(500, `{"error":"database is locked"}`), ack}, 2, "", 0},
		{"connection dropped twice", []http.HandlerFunc{hangUp, hangUp, ack}, 3, "", 0},
		{"answer cut short", []http.HandlerFunc{cutShort, ack}, 2, "", 0},
		{"429 then 200", []http.HandlerFunc{status(429, "slow down", "Retry-After", "0"), ack}, 2, "", 0},
		{"400 is not retried", []http.HandlerFunc{status(400, `{"error":"observation 0: unknown status \"hot\""}`), ack}, 1,
			`answered 400: observation 0: unknown status "hot"`, 400},
		{"413 is not retried", []http.HandlerFunc{status(413, "too big"), ack}, 1, "answered 413: too big: the server takes smaller batches", 413},
		{"401 is not retried", []http.HandlerFunc{status(401, `{"error":"invalid token"}`), ack}, 1, "the token is not valid for this server: enrol again", 401},
		{"403 is not retried", []http.HandlerFunc{status(403, `{"error":"forbidden"}`), ack}, 1, "another agent's ID", 403},
		{"503 for ever", []http.HandlerFunc{status(503, "maintenance")}, DefaultAttempts, "answered 503: maintenance: the server failed: try again later, or see its log (gave up after 6 attempts)", 503},
		{"hang up for ever", []http.HandlerFunc{hangUp}, DefaultAttempts, "is the server running and reachable? (gave up after 6 attempts)", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{handlers: tc.handlers}
			c, srv := testClient(t, rec)
			resp, err := c.Send(context.Background(), testBatch())
			if n := rec.requests(); n != tc.attempts {
				t.Errorf("server got %d requests, want %d", n, tc.attempts)
			}
			for i, b := range rec.bodies {
				if string(b) != string(rec.bodies[0]) {
					t.Errorf("attempt %d sent another body:\n%s\nfirst:\n%s", i+1, b, rec.bodies[0])
				}
				var got Batch
				if err := json.Unmarshal(b, &got); err != nil || got.Seq != 42 {
					t.Errorf("attempt %d: seq %d (%v), want 42", i+1, got.Seq, err)
				}
				if rec.auth[i] != "Bearer "+testToken {
					t.Errorf("attempt %d: Authorization %q", i+1, rec.auth[i])
				}
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if resp.ConfigVersion != 7 {
					t.Errorf("response %+v, want the server's", resp)
				}
				return
			}
			if err == nil {
				t.Fatalf("Send succeeded, want an error with %q", tc.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q lacks %q", msg, tc.wantErr)
			}
			if !strings.Contains(msg, srv.URL+PathReport) {
				t.Errorf("error %q does not name the server %s", msg, srv.URL)
			}
			if strings.Contains(msg, "s3cr3t") {
				t.Errorf("error %q shows the token", msg)
			}
			var he *HTTPError
			if errors.As(err, &he) != (tc.status != 0) || tc.status != 0 && he.Status != tc.status {
				t.Errorf("error %v: HTTPError %+v, want status %d", err, he, tc.status)
			}
		})
	}
}

// TestSendRetryAfter checks that a 429's Retry-After is waited, though it
// is longer than the backoff.
func TestSendRetryAfter(t *testing.T) {
	rec := &recorder{handlers: []http.HandlerFunc{status(429, "slow down", "Retry-After", "1"), ack}}
	c, _ := testClient(t, rec)
	if _, err := c.Send(context.Background(), testBatch()); err != nil {
		t.Fatal(err)
	}
	if n := rec.requests(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	if d := rec.times[1].Sub(rec.times[0]); d < time.Second {
		t.Errorf("retried after %s, want the server's Retry-After of 1s", d)
	}
}

// TestSendDeadline checks that a Retry-After past the context's deadline
// ends the retries at once, with the server's answer.
func TestSendDeadline(t *testing.T) {
	rec := &recorder{handlers: []http.HandlerFunc{status(429, "slow down", "Retry-After", "30")}}
	c, _ := testClient(t, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Send(ctx, testBatch())
	if err == nil || !strings.Contains(err.Error(), "answered 429: slow down") || !strings.Contains(err.Error(), "after the deadline") {
		t.Errorf("error %v, want the 429 and the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("gave up after %s, want at once", d)
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for _, tc := range []struct {
		attempt int
		ceiling time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {30, time.Second}} {
		seen := make(map[time.Duration]bool)
		for range 50 {
			d := c.backoff(tc.attempt)
			if d < tc.ceiling/2 || d > tc.ceiling {
				t.Fatalf("retry %d: waited %s, want %s to %s", tc.attempt, d, tc.ceiling/2, tc.ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("retry %d: %d different waits in 50: no jitter", tc.attempt, len(seen))
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 2 ", 2 * time.Second},
		{"-5", 0},
		{"soon", 0},
		{"100000", maxRetryAfter},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

// TestSendTooLarge checks that Send refuses a body over MaxBatchBytes
// without sending it, and SendAll sends it in parts the server takes.
func TestSendTooLarge(t *testing.T) {
	rec := &recorder{handlers: []http.HandlerFunc{ack}}
	c, _ := testClient(t, rec)
	b := testBatch()
	b.Observations = bigObservations(3, 40, 70000) // 3 x 40 x ~70 kB: ~8.4 MB
	if _, err := c.Send(context.Background(), b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Send: %v, want ErrTooLarge", err)
	}
	if n := rec.requests(); n != 0 {
		t.Fatalf("%d requests for a batch too large, want none", n)
	}
	resps, err := c.SendAll(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) < 2 || len(resps) != rec.requests() {
		t.Fatalf("%d answers to %d requests, want at least 2 parts", len(resps), rec.requests())
	}
	var got []string
	for i, body := range rec.bodies {
		if len(body) > MaxBatchBytes {
			t.Errorf("part %d is %d bytes, over %d", i, len(body), MaxBatchBytes)
		}
		var p Batch
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Seq != b.Seq+uint64(i) {
			t.Errorf("part %d: seq %d, want %d", i, p.Seq, b.Seq+uint64(i))
		}
		got = append(got, findingKeys(p.Observations)...)
	}
	if want := findingKeys(b.Observations); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the parts hold %d findings, want the batch's %d in order", len(got), len(want))
	}
}

func TestEnrol(t *testing.T) {
	var got EnrolRequest
	var auth string
	c, _ := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathEnrol || r.Method != http.MethodPost {
			http.Error(w, "wrong path", 404)
			return
		}
		auth = r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(EnrolResponse{AgentID: "a1", Token: "reach_agent_new"})
	}))
	c.Token = "reach_enrol_abc"
	resp, err := c.Enrol(context.Background(), EnrolRequest{Hostname: "h1", ReachVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.AgentID != "a1" || resp.Token != "reach_agent_new" || got.Hostname != "h1" || auth != "Bearer reach_enrol_abc" {
		t.Errorf("enrol: response %+v, request %+v, auth %q", resp, got, auth)
	}

	// An answer without identity is not taken for one.
	c2, _ := testClient(t, status(200, `{}`))
	if _, err := c2.Enrol(context.Background(), EnrolRequest{}); err == nil || !strings.Contains(err.Error(), "is it a reach server?") {
		t.Errorf("enrol against an empty answer: %v", err)
	}
}

// TestConfig checks the long poll: the version and wait sent, a change
// returned, and a 304 after the wait returned as no change.
func TestConfig(t *testing.T) {
	var mu sync.Mutex
	current := int64(3)
	c, _ := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathConfig || r.Method != http.MethodGet {
			http.Error(w, "wrong path", 404)
			return
		}
		v := r.URL.Query().Get("version")
		wait := r.URL.Query().Get("wait")
		mu.Lock()
		cur := current
		mu.Unlock()
		if v == fmt.Sprint(cur) {
			var secs int
			fmt.Sscan(wait, &secs)
			time.Sleep(time.Duration(secs) * time.Second)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		json.NewEncoder(w).Encode(Config{Version: cur, Rules: []Rule{{Targets: []string{"*"}}}})
	}))
	cfg, changed, err := c.Config(context.Background(), 0, 10*time.Second)
	if err != nil || !changed || cfg.Version != 3 || len(cfg.Rules) != 1 {
		t.Fatalf("Config(0) = %+v, %v, %v; want version 3", cfg, changed, err)
	}
	start := time.Now()
	cfg, changed, err = c.Config(context.Background(), 3, time.Second)
	if err != nil || changed || cfg != nil {
		t.Fatalf("Config(3) = %+v, %v, %v; want no change", cfg, changed, err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("no change after %s, want the 1s wait", d)
	}
	// The wait is on top of the attempt's timeout: a long poll longer
	// than Timeout is no failure.
	c.Timeout = 200 * time.Millisecond
	if _, changed, err := c.Config(context.Background(), 3, time.Second); err != nil || changed {
		t.Errorf("a wait longer than the timeout: changed %v, %v", changed, err)
	}
}

// TestTLS checks -server-ca: a server whose certificate a private CA
// signed is trusted with that CA, and refused without, with what to do.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(ack))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(srv.URL, testToken, WithCAFile(ca))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), testBatch()); err != nil {
		t.Errorf("with the CA: %v", err)
	}
	c, err = NewClient(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	c.Attempts = 1
	if _, err := c.Send(context.Background(), testBatch()); err == nil || !strings.Contains(err.Error(), "-server-ca FILE") {
		t.Errorf("without the CA: %v, want a hint at -server-ca", err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	if _, err := NewClient(srv.URL, testToken, WithCAFile(notPEM)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without certificate: %v", err)
	}
}

func TestNewClientURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		opts    []Option
		wantErr string
	}{
		{"https://reach.example.com:8443", nil, ""},
		{"https://reach.example.com/", nil, ""},
		{"http://127.0.0.1:8080", nil, ""},
		{"http://localhost:8080", nil, ""},
		{"http://[::1]:8080", nil, ""},
		{"http://reach.example.com", nil, "use https"},
		{"http://reach.example.com", []Option{WithInsecure()}, ""},
		{"reach.example.com", nil, "give an http:// or https:// URL"},
		{"ftp://reach.example.com", nil, "give an http:// or https:// URL"},
		{"https://user:pw@reach.example.com", nil, "remove the user and password"},
		{"https://reach.example.com", []Option{WithTimeout(0)}, "must be positive"},
		{"https://reach.example.com", []Option{WithCAFile("/nonexistent/ca.pem")}, "server CA"},
	} {
		_, err := NewClient(tc.url, testToken, tc.opts...)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("NewClient(%q): %v, want %q", tc.url, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("NewClient(%q): %v shows the password", tc.url, err)
		}
	}
}

// bigObservations returns n observations with m findings each, each
// finding about size bytes of JSON.
func bigObservations(n, m, size int) []Observation {
	var obs []Observation
	for i := range n {
		b := &report.Binary{Path: fmt.Sprintf("/bin/p%d", i), BuildID: fmt.Sprintf("b%d", i), Modules: []report.Module{{Path: "example.com/m", Version: "v1.0.0"}}}
		for j := range m {
			b.Findings = append(b.Findings, &report.Finding{
				OSV: fmt.Sprintf("GO-%d-%04d", i, j), Module: "example.com/m", Version: "v1.0.0", Status: report.Linked,
				Summary: strings.Repeat("x", size),
			})
		}
		obs = append(obs, Observation{Instance: fmt.Sprintf("run/%d", i), Service: "s", Mode: "run", Binary: b})
	}
	return obs
}

// findingKeys lists instance and OSV of every finding, in order.
func findingKeys(obs []Observation) []string {
	var keys []string
	for _, o := range obs {
		for _, f := range o.Binary.Findings {
			keys = append(keys, o.Instance+"|"+o.Binary.BuildID+"|"+f.OSV)
		}
	}
	return keys
}
