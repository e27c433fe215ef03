package server

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/testprog"
)

func TestPostgresHostileAgentInput(t *testing.T) {
	dsn := testprog.Postgres(t)
	f := newFixture(t, dsn, Options{})
	other := f.enrolAgent("host-b")
	before := rowCounts(t, dsn)
	for _, tt := range []struct {
		name, token string
		body        any
		code        int
	}{
		{"another agent's ID", f.agent.Token, testBatch(other.AgentID, 1, "i", 1), 403},
		{"admin token", f.admin, testBatch(f.agent.AgentID, 1, "i", 1), 401},
		{"malformed", f.agent.Token, `{"agent_id":`, 400},
	} {
		if code, body := do(t, "POST", f.url+fleet.PathReport, tt.token, tt.body); code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
		}
	}
	if after := rowCounts(t, dsn); !maps.Equal(before, after) {
		t.Errorf("rejected batches changed the store: %v, then %v", before, after)
	}
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, 1, "i", 1)); code != 200 {
		t.Errorf("good batch: %d %s", code, body)
	}
}

// TestPostgresTwoServers: a change made on server A reaches an agent long
// polling server B, on one PostgreSQL database, within a second.
func TestPostgresTwoServers(t *testing.T) {
	testLongPollOtherServer(t, testprog.Postgres(t))
}

func TestPostgresRestartWhileReporting(t *testing.T) {
	testRestartWhileReporting(t, testprog.Postgres(t))
}

// TestPostgresDownAndUp: while PostgreSQL is stopped, agents get 503 with
// Retry-After (and the long polls of those already waiting keep going);
// once it is back, the same batches go in, each once.
func TestPostgresDownAndUp(t *testing.T) {
	pg := testprog.PostgresServer(t)
	dsn := pg.DSN()
	f := newFixture(t, dsn, Options{})
	send := func(seq uint64) *http.Response {
		resp := request(t, http.DefaultClient, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, seq, "i1", seq), nil)
		resp.Body.Close()
		return resp
	}
	if resp := send(1); resp.StatusCode != 200 {
		t.Fatalf("batch 1: %d", resp.StatusCode)
	}
	poll := longPoll(t, f.url, f.agent.Token, 0, 5)
	time.Sleep(200 * time.Millisecond)

	pg.Stop()
	for _, seq := range []uint64{2, 3} {
		resp := send(seq)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("batch %d with the database down: %d, Retry-After %q; want 503 with Retry-After", seq, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	code, body := do(t, "GET", f.url+"/api/v1/config", f.admin, nil)
	if code != 503 {
		t.Errorf("admin API with the database down: %d %s, want 503", code, body)
	}
	if code, body := do(t, "POST", f.url+fleet.PathEnrol, f.enrol, fleet.EnrolRequest{Hostname: "x"}); code != 503 {
		t.Errorf("enrol with the database down: %d %s, want 503", code, body)
	}
	if r := <-poll; r.code != 304 {
		t.Errorf("long poll waiting while the database went down: %d, want 304", r.code)
	}

	pg.Start()
	// The agents retry: the pool's broken connections are replaced.
	deadline := time.Now().Add(20 * time.Second)
	for _, seq := range []uint64{2, 3, 3} {
		for {
			resp := send(seq)
			if resp.StatusCode == 200 {
				break
			}
			if resp.StatusCode != 503 || time.Now().After(deadline) {
				t.Fatalf("batch %d with the database back: %d", seq, resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := countRows(t, dsn, "batches"); n != 3 {
		t.Errorf("%d batches stored, want 3", n)
	}
	// And configuration changes flow again, through the hub.
	cfg := putConfig(t, f.url, f.admin, fleet.Config{Paused: true})
	r := <-longPoll(t, f.url, f.agent.Token, 0, 5)
	if r.code != 200 || r.cfg.Version != cfg.Version {
		t.Errorf("poll after the database came back: %d %+v", r.code, r.cfg)
	}
}

// TestPostgresManyAgentsTwoServers: 100 agents long poll, half on each of
// two servers; a change on one reaches all of them within 2 seconds (the
// issue's goal; about 0.3 s unloaded: the other server's poll, 250 ms).
func TestPostgresManyAgentsTwoServers(t *testing.T) {
	dsn := testprog.Postgres(t)
	f := newFixture(t, dsn, Options{AgentBurst: 1000, AgentRate: 1000})
	_, urlB := startServer(t, openStore(t, dsn), Options{})
	ctx := context.Background()
	tokens := make([]string, 100)
	for i := range tokens {
		resp, err := f.store.Enrol(ctx, f.enrol, fleet.EnrolRequest{Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = resp.Token
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	var set time.Time
	setc := make(chan struct{})
	for i, tok := range tokens {
		u := f.url
		if i%2 == 1 {
			u = urlB
		}
		wg.Go(func() {
			req, _ := http.NewRequest("GET", u+fleet.PathConfig+"?version=0&wait=30", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var cfg fleet.Config
			json.NewDecoder(resp.Body).Decode(&cfg)
			<-setc
			d := time.Since(set)
			if resp.StatusCode != 200 || cfg.Version == 0 {
				t.Errorf("agent %d: %d version %d", i, resp.StatusCode, cfg.Version)
			}
			mu.Lock()
			worst = max(worst, d)
			mu.Unlock()
		})
	}
	time.Sleep(time.Second) // all waiting
	set = time.Now()
	close(setc)
	putConfig(t, f.url, f.admin, fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}, Count: true}}})
	wg.Wait()
	t.Logf("a change reached 100 agents on two servers within %v", worst)
	if worst > 2*time.Second {
		t.Errorf("a change reached 100 agents on two servers within %v, want < 2s", worst)
	}
}
