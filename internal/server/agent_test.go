package server

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

func TestReport(t *testing.T) {
	f := newFixture(t, "", Options{})
	b := testBatch(f.agent.AgentID, 1, "i1", 3)
	code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, b)
	if code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	var resp fleet.BatchResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Seq != 1 || resp.Duplicate || resp.Updates == 0 {
		t.Errorf("first batch answered %+v, want seq 1, not duplicate, updates > 0", resp)
	}
	// The same batch again, as an agent retries it: acknowledged, not
	// stored twice.
	before := rowCounts(t, f.dsn)
	code, body = do(t, "POST", f.url+fleet.PathReport, f.agent.Token, b)
	if code != http.StatusOK {
		t.Fatalf("retry: %d %s", code, body)
	}
	resp = fleet.BatchResponse{}
	json.Unmarshal(body, &resp)
	if !resp.Duplicate || resp.Updates != 0 {
		t.Errorf("retry answered %+v, want duplicate and no updates", resp)
	}
	if after := rowCounts(t, f.dsn); !maps.Equal(before, after) {
		t.Errorf("a retried batch changed the store: rows %v, then %v", before, after)
	}
	if n := countRows(t, f.dsn, "batches"); n != 1 {
		t.Errorf("%d batches stored, want 1", n)
	}
	if n := countRows(t, f.dsn, "findings"); n == 0 {
		t.Errorf("no finding stored")
	}
	// A sender with only a token leaves agent_id out: the batch is the
	// token's agent's.
	anon := testBatch("", 2, "i1", 5)
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, anon); code != http.StatusOK {
		t.Fatalf("batch without agent_id: %d %s", code, body)
	}
	if n := sqlInt(t, f.dsn, "SELECT COUNT(*) FROM batches WHERE agent_id = '"+f.agent.AgentID+"' AND seq = 2"); n != 1 {
		t.Errorf("batch without agent_id stored as the token's agent %d times, want 1", n)
	}
}

// TestHostileAgentInput sends every agent endpoint what a hostile or
// broken client might, and checks the status code, that the answer says
// why, and that nothing was stored.
func TestHostileAgentInput(t *testing.T) {
	f := newFixture(t, "", Options{AgentBurst: 1000, AgentRate: 1000})
	other := f.enrolAgent("host-b")
	ok := testBatch(f.agent.AgentID, 1, "i1", 1)
	okJSON, _ := json.Marshal(ok)
	mutate := func(fn func(b *fleet.Batch)) *fleet.Batch {
		b := testBatch(f.agent.AgentID, 1, "i1", 1)
		fn(b)
		return b
	}
	big := strings.Repeat(" ", fleet.MaxBatchBytes) + string(okJSON) // valid JSON, too long
	before := rowCounts(t, f.dsn)

	for _, tt := range []struct {
		name, method, path, token string
		body                      any
		code                      int
		says                      string // in the answer
	}{
		{"report without token", "POST", fleet.PathReport, "", ok, 401, "no agent token"},
		{"report with a wrong token", "POST", fleet.PathReport, "reach_agent_nosuchtoken", ok, 401, "invalid token"},
		{"report with a huge token", "POST", fleet.PathReport, strings.Repeat("x", 10000), ok, 401, ""},
		{"report with the admin token", "POST", fleet.PathReport, f.admin, ok, 401, ""},
		{"report with the enrolment token", "POST", fleet.PathReport, f.enrol, ok, 401, ""},
		{"report of another agent", "POST", fleet.PathReport, other.Token, ok, 403, "sent with the token of agent"},
		{"report naming another agent", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.AgentID = other.AgentID }), 403, ""},
		{"report oversized", "POST", fleet.PathReport, f.agent.Token, big, 413, "larger than"},
		{"report empty", "POST", fleet.PathReport, f.agent.Token, "", 400, "empty body"},
		{"report not JSON", "POST", fleet.PathReport, f.agent.Token, "<batch/>", 400, "malformed JSON"},
		{"report truncated", "POST", fleet.PathReport, f.agent.Token, okJSON[:len(okJSON)/2], 400, "malformed JSON"},
		{"report with trailing data", "POST", fleet.PathReport, f.agent.Token, string(okJSON) + `{"agent_id":"x"}`, 400, "more after the value"},
		{"report array", "POST", fleet.PathReport, f.agent.Token, "[" + string(okJSON) + "]", 400, "malformed JSON"},
		{"report seq as string", "POST", fleet.PathReport, f.agent.Token, strings.Replace(string(okJSON), `"seq":1`, `"seq":"1"`, 1), 400, "malformed JSON"},
		{"report negative seq", "POST", fleet.PathReport, f.agent.Token, strings.Replace(string(okJSON), `"seq":1`, `"seq":-1`, 1), 400, "malformed JSON"},
		{"report seq 0", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.Seq = 0 }), 400, "seq"},
		{"report unknown status", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.Observations[0].Binary.Findings[0].Status = "pwned" }), 400, ""},
		{"report unknown symbol status", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.Observations[0].Binary.Findings[0].Symbols[0].Status = "" }), 400, ""},
		{"report without binary", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.Observations[0].Binary = nil }), 400, ""},
		{"report without OSV", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.Observations[0].Binary.Findings[0].OSV = "" }), 400, ""},
		{"report without instance", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) { b.Observations[0].Instance = "" }), 400, ""},
		{"report with a nil finding", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) {
			b.Observations[0].Binary.Findings = append(b.Observations[0].Binary.Findings, nil)
		}), 400, ""},
		{"report with a nil symbol", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) {
			b.Observations[0].Binary.Findings[0].Symbols = append(b.Observations[0].Binary.Findings[0].Symbols, nil)
		}), 400, ""},
		{"report a good observation then a bad one", "POST", fleet.PathReport, f.agent.Token, mutate(func(b *fleet.Batch) {
			bad := testBatch(f.agent.AgentID, 1, "i2", 1).Observations[0]
			bad.Binary.Findings[0].Status = "pwned"
			b.Observations = append(b.Observations, bad)
		}), 400, ""},
		{"report by GET", "GET", fleet.PathReport, f.agent.Token, nil, 405, ""},

		{"enrol without token", "POST", fleet.PathEnrol, "", fleet.EnrolRequest{Hostname: "x"}, 401, "no enrolment token"},
		{"enrol with a wrong token", "POST", fleet.PathEnrol, "reach_enrol_nosuch", fleet.EnrolRequest{Hostname: "x"}, 401, ""},
		{"enrol with an agent token", "POST", fleet.PathEnrol, f.agent.Token, fleet.EnrolRequest{Hostname: "x"}, 401, ""},
		{"enrol with the admin token", "POST", fleet.PathEnrol, f.admin, fleet.EnrolRequest{Hostname: "x"}, 401, ""},
		{"enrol malformed", "POST", fleet.PathEnrol, f.enrol, `{"hostname":`, 400, "malformed JSON"},
		{"enrol oversized", "POST", fleet.PathEnrol, f.enrol, `{"hostname":"` + strings.Repeat("h", enrolBytes) + `"}`, 413, ""},

		{"config without token", "GET", fleet.PathConfig + "?version=0&wait=1", "", nil, 401, ""},
		{"config with the admin token", "GET", fleet.PathConfig + "?version=0&wait=1", f.admin, nil, 401, ""},
		{"config with the enrolment token", "GET", fleet.PathConfig, f.enrol, nil, 401, ""},
		{"config negative version", "GET", fleet.PathConfig + "?version=-1", f.agent.Token, nil, 400, "version -1: at least 0"},
		{"config version not a number", "GET", fleet.PathConfig + "?version=abc", f.agent.Token, nil, 400, "not a whole number"},
		{"config huge version", "GET", fleet.PathConfig + "?version=99999999999999999999999", f.agent.Token, nil, 400, "not a whole number"},
		{"config huge wait", "GET", fleet.PathConfig + "?version=0&wait=3600", f.agent.Token, nil, 400, "at most 60 seconds"},
		{"config overflowing wait", "GET", fleet.PathConfig + "?wait=9223372036854775807", f.agent.Token, nil, 400, "at most 60"},
		{"config negative wait", "GET", fleet.PathConfig + "?wait=-5", f.agent.Token, nil, 400, "at least 0"},
		{"config fractional wait", "GET", fleet.PathConfig + "?wait=1.5", f.agent.Token, nil, 400, "not a whole number"},
		{"config by POST", "POST", fleet.PathConfig, f.agent.Token, "{}", 405, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, f.url+tt.path, tt.token, tt.body)
			if code != tt.code {
				t.Fatalf("%s %s: %d %.300s, want %d", tt.method, tt.path, code, body, tt.code)
			}
			if tt.says != "" && !strings.Contains(string(body), tt.says) {
				t.Errorf("answer %.300s does not say %q", body, tt.says)
			}
			if code != 405 && !json.Valid(body) {
				t.Errorf("answer %.300s is not JSON", body)
			}
		})
	}
	after := rowCounts(t, f.dsn)
	if !maps.Equal(before, after) {
		t.Errorf("hostile requests changed the store: rows %v, then %v", before, after)
	}
	// And the agent's good batch still goes in.
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, ok); code != 200 {
		t.Fatalf("good batch after the hostile ones: %d %s", code, body)
	}
}

// TestReportUnknownFields: an agent newer than the server adds fields;
// the server ignores them (see agent.go).
func TestReportUnknownFields(t *testing.T) {
	f := newFixture(t, "", Options{})
	b, _ := json.Marshal(testBatch(f.agent.AgentID, 1, "i1", 1))
	newer := strings.Replace(string(b), `"seq":1`, `"seq":1,"compression":"zstd","future":{"a":[1,2]}`, 1)
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, newer); code != 200 {
		t.Fatalf("batch with unknown fields: %d %s", code, body)
	}
	if n := countRows(t, f.dsn, "batches"); n != 1 {
		t.Errorf("%d batches stored, want 1", n)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, "", Options{AgentRate: 0.5, AgentBurst: 3})
	other := f.enrolAgent("host-b")
	var codes []int
	var retry string
	for seq := uint64(1); seq <= 5; seq++ {
		resp := request(t, http.DefaultClient, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, seq, "i1", seq), nil)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 {
			retry = resp.Header.Get("Retry-After")
		}
	}
	if want := []int{200, 200, 200, 429, 429}; !equalInts(codes, want) {
		t.Errorf("codes %v, want %v", codes, want)
	}
	if retry != "2" {
		t.Errorf("Retry-After %q, want 2 (one token at 0.5/s)", retry)
	}
	// Another agent has its own bucket.
	if code, body := do(t, "POST", f.url+fleet.PathReport, other.Token, testBatch(other.AgentID, 1, "i9", 1)); code != 200 {
		t.Errorf("the other agent: %d %s", code, body)
	}
	if n := countRows(t, f.dsn, "batches"); n != 4 {
		t.Errorf("%d batches stored, want 4 (3 + the other agent's)", n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(2, 2)
	l.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.allow("a"); ok != want {
			t.Fatalf("take %d: %v, want %v", i, ok, want)
		}
	}
	if _, wait := l.allow("a"); wait != 500*time.Millisecond {
		t.Errorf("wait %v, want 500ms at 2/s", wait)
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Errorf("no token after 500ms at 2/s")
	}
	// Full buckets are swept when the map is full; others are kept.
	l.allow("b")
	for i := range maxBuckets {
		l.buckets[string(rune(i))+"x"] = &bucket{tokens: 2, at: now}
	}
	l.allow("new")
	if _, ok := l.buckets["b"]; !ok {
		t.Errorf("a bucket not full was swept")
	}
	if len(l.buckets) > 5 {
		t.Errorf("%d buckets after the sweep, want the few not full", len(l.buckets))
	}
}

// TestConcurrencyCap: with every slot taken, a request waits a second,
// then gets 503 with Retry-After; a long poll waiting takes no slot.
func TestConcurrencyCap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	block := func(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
		mux.Handle("GET /block", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		})))
	}
	f := newFixture(t, "", Options{MaxConcurrent: 1, Mounts: []Mount{block}})
	// A long poll waiting does not hold the one slot.
	poll := make(chan int, 1)
	go func() {
		poll <- send("GET", f.url+fleet.PathConfig+"?version=0&wait=3", f.agent.Token)
	}()
	time.Sleep(300 * time.Millisecond)
	go send("GET", f.url+"/block", f.admin)
	<-entered
	start := time.Now()
	resp := request(t, http.DefaultClient, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, 1, "i1", 1), nil)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("with no slot: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d < slotWait || d > slotWait+2*time.Second {
		t.Errorf("answered after %v, want about %v", d, slotWait)
	}
	close(release)
	if code := <-poll; code != 304 {
		t.Errorf("long poll: %d, want 304", code)
	}
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, 1, "i1", 1)); code != 200 {
		t.Errorf("with the slot free again: %d %s", code, body)
	}
}

func TestRevokedAgent(t *testing.T) {
	f := newFixture(t, "", Options{})
	ctx := context.Background()
	if err := f.store.RevokeAgent(ctx, f.agent.AgentID); err != nil {
		t.Fatal(err)
	}
	before := rowCounts(t, f.dsn)
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, 1, "i1", 1)); code != 401 {
		t.Errorf("report of a revoked agent: %d %s, want 401", code, body)
	}
	if code, _ := do(t, "GET", f.url+fleet.PathConfig, f.agent.Token, nil); code != 401 {
		t.Errorf("config of a revoked agent: %d, want 401", code)
	}
	if after := rowCounts(t, f.dsn); !maps.Equal(before, after) {
		t.Errorf("a revoked agent changed the store: %v, then %v", before, after)
	}
}
