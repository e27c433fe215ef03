package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/server/store"
	"github.com/reach-sca/reach/internal/testprog"
)

// memQueue is an in-memory delivery queue with the store's contract:
// PendingDeliveries returns the undelivered, oldest first; MarkDelivered
// counts an attempt and delivers on a nil error.
type memQueue struct {
	mu         sync.Mutex
	deliveries []store.Delivery
	delivered  map[int64]int // delivery ID: times marked delivered
	errs       map[int64][]string
	sightings  map[int64][]store.Sighting
	secret     []byte
	failReads  int // PendingDeliveries fails this many times first
}

func newMemQueue(sink string, events []Event) *memQueue {
	q := &memQueue{delivered: map[int64]int{}, errs: map[int64][]string{}, sightings: map[int64][]store.Sighting{}, secret: []byte("s3cret")}
	for i, e := range events {
		q.deliveries = append(q.deliveries, store.Delivery{ID: int64(100 + i), Sink: sink, Finding: e.Finding, Created: e.Queued})
		if e.Sighting.Host != "" {
			q.sightings[e.Finding.ID] = []store.Sighting{e.Sighting}
		}
	}
	return q
}

func (q *memQueue) PendingDeliveries(ctx context.Context, sink string, n int) ([]store.Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failReads > 0 {
		q.failReads--
		return nil, store.ErrUnavailable
	}
	var out []store.Delivery
	for _, d := range q.deliveries {
		if d.Sink == sink && q.delivered[d.ID] == 0 && len(out) < n {
			out = append(out, d)
		}
	}
	return out, nil
}

func (q *memQueue) MarkDelivered(ctx context.Context, id int64, err error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.deliveries {
		if q.deliveries[i].ID == id {
			q.deliveries[i].Attempts++
		}
	}
	if err != nil {
		q.errs[id] = append(q.errs[id], err.Error())
		return nil
	}
	q.delivered[id]++
	return nil
}

func (q *memQueue) Sightings(ctx context.Context, id int64) ([]store.Sighting, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sightings[id], nil
}

func (q *memQueue) Secret(ctx context.Context, name string) ([]byte, error) {
	if name != WebhookSecretName {
		return nil, errors.New("unknown secret " + name)
	}
	return q.secret, nil
}

// done reports whether every delivery was marked delivered.
func (q *memQueue) done() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range q.deliveries {
		if q.delivered[d.ID] == 0 {
			return false
		}
	}
	return true
}

// run runs d until q is done (or the test times out), and stops it.
func run(t *testing.T, d *Deliverer, q *memQueue) {
	t.Helper()
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !q.done() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !q.done() {
		t.Fatalf("not delivered in 10 s; errors: %v", q.errs)
	}
}

// collector is a fake OTLP/HTTP collector that decodes what it gets with
// the collector's decoder; it answers fail errors first.
type collector struct {
	t       *testing.T
	fail    atomic.Int32
	mu      sync.Mutex
	got     []Event // what it accepted, by finding ID and body
	records int
	bodies  [][]byte
	reqs    atomic.Int32
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.reqs.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/json" {
		c.t.Errorf("%s %s (%s), want POST /v1/logs (application/json)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if r.Header.Get("Authorization") != "Bearer collector-key" {
		c.t.Errorf("OTLP headers not sent: Authorization %q", r.Header.Get("Authorization"))
	}
	if c.fail.Add(-1) >= 0 {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	logs := decodeOTLP(c.t, body)
	c.mu.Lock()
	c.records += logs.LogRecordCount()
	c.bodies = append(c.bodies, body)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{}`)
}

func TestDeliverOTLP(t *testing.T) {
	c := &collector{t: t}
	srv := httptest.NewServer(c)
	defer srv.Close()
	q := newMemQueue(SinkOTLP, fixtureEvents())
	d := &Deliverer{Store: q, OTLPEndpoint: srv.URL, OTLPHeaders: map[string]string{"Authorization": "Bearer collector-key"}, Poll: 10 * time.Millisecond}
	if s := d.Sinks(); len(s) != 1 || s[0] != SinkOTLP {
		t.Errorf("sinks %v", s)
	}
	run(t, d, q)
	if c.records != 2 || c.reqs.Load() != 1 {
		t.Errorf("collector got %d records in %d requests, want 2 in 1", c.records, c.reqs.Load())
	}
	// The resource comes from the store's sighting.
	if !bytes.Contains(c.bodies[0], []byte(`"k8s.pod.name"`)) {
		t.Errorf("no k8s.pod.name in %s", c.bodies[0])
	}
	for id, n := range q.delivered {
		if n != 1 {
			t.Errorf("delivery %d marked delivered %d times", id, n)
		}
	}
}

// TestDeliverRetries: a collector that fails three times then accepts
// gets the record delivered once; each failure is recorded.
func TestDeliverRetries(t *testing.T) {
	c := &collector{t: t}
	c.fail.Store(3)
	srv := httptest.NewServer(c)
	defer srv.Close()
	q := newMemQueue(SinkOTLP, fixtureEvents()[:1])
	q.failReads = 2 // and the store is down at first
	d := &Deliverer{Store: q, OTLPEndpoint: srv.URL + "/v1/logs", OTLPHeaders: map[string]string{"Authorization": "Bearer collector-key"},
		Poll: 5 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	start := time.Now()
	run(t, d, q)
	if c.records != 1 || c.reqs.Load() != 4 {
		t.Errorf("collector accepted %d records after %d requests, want 1 after 4", c.records, c.reqs.Load())
	}
	errs := q.errs[100]
	if len(errs) != 3 || q.delivered[100] != 1 || q.deliveries[0].Attempts != 4 {
		t.Errorf("recorded errors %q, delivered %d times, %d attempts; want 3 errors, once, 4", errs, q.delivered[100], q.deliveries[0].Attempts)
	}
	for _, e := range errs {
		if !bytes.Contains([]byte(e), []byte("503")) || !bytes.Contains([]byte(e), []byte("overloaded")) {
			t.Errorf("error %q does not say what the collector answered", e)
		}
	}
	// Backoff 10, 20, 40 ms between the attempts.
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Errorf("delivered after %v: the retries did not back off", el)
	}
}

func TestBackoff(t *testing.T) {
	d := &Deliverer{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, d.backoff(n))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got[i], want[i]*time.Second)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	d := &Deliverer{MinBackoff: time.Second, MaxBackoff: time.Minute}
	tests := []struct {
		err  error
		want time.Duration
	}{
		{errors.New("connection refused"), time.Second},
		{fmt.Errorf("otlp logs: %w", &statusError{status: "503", retryAfter: 30 * time.Second}), 30 * time.Second},
		{fmt.Errorf("otlp logs: %w", &statusError{status: "429", retryAfter: time.Hour}), time.Minute},
		{&statusError{status: "500"}, time.Second},
	}
	for _, tt := range tests {
		if got := d.retryIn(1, tt.err); got != tt.want {
			t.Errorf("retryIn(1, %v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	// Over HTTP: the header is read.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := d.post(context.Background(), "webhook", srv.URL+"/?key=secret", nil, http.Header{})
	var se *statusError
	if !errors.As(err, &se) || se.retryAfter != 7*time.Second || strings.Contains(err.Error(), "secret") {
		t.Errorf("post: %v", err)
	}
}

func TestDeliverWebhook(t *testing.T) {
	var mu sync.Mutex
	var payloads []WebhookPayload
	var arrivals []string // delivery IDs, as requests came
	var slow atomic.Int32
	slow.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		arrivals = append(arrivals, r.Header.Get(DeliveryHeader))
		mu.Unlock()
		if slow.Add(-1) >= 0 {
			time.Sleep(time.Second) // past the timeout: the sender gave up
			return
		}
		// The server's own secret, as an admin reads it.
		if !VerifySignature([]byte(hex.EncodeToString([]byte("s3cret"))), body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.Header.Get(EventHeader) != EventName || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		var p WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("body: %v", err)
		}
		if r.Header.Get(DeliveryHeader) != strconv.FormatInt(p.Delivery, 10) {
			t.Errorf("delivery header %q, body %d", r.Header.Get(DeliveryHeader), p.Delivery)
		}
		mu.Lock()
		payloads = append(payloads, p)
		mu.Unlock()
	}))
	defer srv.Close()
	q := newMemQueue(SinkWebhook, fixtureEvents())
	d := &Deliverer{Store: q, WebhookURL: srv.URL + "/hook", Poll: 5 * time.Millisecond, Timeout: 500 * time.Millisecond, MinBackoff: 10 * time.Millisecond}
	run(t, d, q)
	mu.Lock()
	defer mu.Unlock()
	if len(payloads) != 2 {
		t.Fatalf("%d payloads, want 2", len(payloads))
	}
	if len(q.errs[100]) < 1 || !bytes.Contains([]byte(q.errs[100][0]), []byte("deadline exceeded")) {
		t.Errorf("the timed out attempt recorded %q", q.errs[100])
	}
	// 100 timed out first: 101 went on meanwhile, and 100 came after.
	if len(arrivals) < 3 || arrivals[0] != "100" || arrivals[1] != "101" {
		t.Errorf("requests for deliveries %q; want 100 (timed out), 101 while 100 waited, then 100", arrivals)
	}
	byID := map[int64]WebhookPayload{}
	for _, p := range payloads {
		byID[p.Delivery] = p
	}
	p := byID[100]
	f := p.Finding
	if p.Event != EventName || f.ID != 1 || f.OSV != "GO-2021-0113" || f.Fix != "go get golang.org/x/text@v0.3.7" ||
		f.Callsite == nil || f.Callsite.Line != 22 || p.Seen == nil || p.Seen.Labels["k8s.pod.name"] != "shop-7d9" || f.Triage == nil || f.Triage.By != "reach" {
		t.Errorf("payload %+v", p)
	}
	if h := byID[101]; h.Finding.Symbol != hostile || h.Message == "" || h.Seen != nil {
		t.Errorf("hostile payload %+v", h)
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"a":1}`)
	sig := Sign([]byte("k"), body)
	// The value of HMAC-SHA256("k", body), computed independently (openssl dgst -sha256 -hmac k).
	if want := "sha256=c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff"; sig != want {
		t.Errorf("signature %q", sig)
	}
	if !VerifySignature([]byte("k"), body, sig) {
		t.Error("own signature rejected")
	}
	for _, bad := range []string{"", sig[7:], "sha256=zz", Sign([]byte("other"), body)} {
		if VerifySignature([]byte("k"), body, bad) {
			t.Errorf("signature %q accepted", bad)
		}
	}
	if VerifySignature([]byte("k"), []byte(`{"a":2}`), sig) {
		t.Error("signature of another body accepted")
	}
}

// TestWebhookSecretGiven: a secret given to the Deliverer signs instead
// of the store's.
func TestWebhookSecretGiven(t *testing.T) {
	var sigs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifySignature([]byte("given"), body, r.Header.Get(SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		sigs = append(sigs, r.Header.Get(SignatureHeader))
	}))
	defer srv.Close()
	q := newMemQueue(SinkWebhook, fixtureEvents()[:1])
	run(t, &Deliverer{Store: q, WebhookURL: srv.URL, WebhookSecret: "given", Poll: 5 * time.Millisecond}, q)
	if len(sigs) != 1 || len(q.errs) != 0 {
		t.Errorf("signatures %q, errors %v", sigs, q.errs)
	}
}

func TestDelivererBadURL(t *testing.T) {
	for _, d := range []*Deliverer{{OTLPEndpoint: "localhost:4318"}, {WebhookURL: "ftp://x/y"}, {WebhookURL: "http://"}} {
		if err := d.Run(context.Background()); err == nil {
			t.Errorf("%+v: no error", d)
		}
	}
}

// TestDeliverFailureLogged: every failed round is logged, once for the
// deliveries one error failed, and the deliveries stay queued.
func TestDeliverFailureLogged(t *testing.T) {
	c := &collector{t: t}
	c.fail.Store(1 << 20)
	srv := httptest.NewServer(c)
	defer srv.Close()
	q := newMemQueue(SinkOTLP, fixtureEvents())
	var logs testprog.SyncBuffer
	d := &Deliverer{Store: q, OTLPEndpoint: srv.URL, OTLPHeaders: map[string]string{"Authorization": "Bearer collector-key"},
		Poll: 5 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); c.reqs.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	lines := strings.Count(logs.String(), "delivery failed; it stays queued")
	if rounds := int(c.reqs.Load()); lines < rounds-1 || lines > rounds || !strings.Contains(logs.String(), "deliveries=2") ||
		!strings.Contains(logs.String(), "503 Service Unavailable") {
		t.Errorf("%d requests failed, %d warnings, want one per request, each for both deliveries:\n%s", rounds, lines, logs.String())
	}
	if q.done() || len(q.errs[100]) < 2 || len(q.errs[101]) < 2 {
		t.Errorf("errors recorded: %v", q.errs)
	}
}
