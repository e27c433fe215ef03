package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// pollResult is the answer to a configuration long poll.
type pollResult struct {
	code    int
	cfg     fleet.Config
	elapsed time.Duration
}

// longPoll starts a configuration request of agent token at url, for a
// change from version, waiting at most wait seconds.
func longPoll(t *testing.T, url, token string, version int64, wait int) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequest("GET", url+fleet.PathConfig+"?version="+itoa(version)+"&wait="+itoa(int64(wait)), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			ch <- pollResult{}
			return
		}
		defer resp.Body.Close()
		r := pollResult{code: resp.StatusCode, elapsed: time.Since(start)}
		if r.code == 200 {
			json.NewDecoder(resp.Body).Decode(&r.cfg)
		}
		ch <- r
	}()
	return ch
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// putConfig sets the configuration through the admin API at url.
func putConfig(t *testing.T, url, admin string, cfg fleet.Config) fleet.Config {
	t.Helper()
	code, body := do(t, "PUT", url+"/api/v1/config", admin, cfg)
	if code != 200 {
		t.Fatalf("put config: %d %s", code, body)
	}
	var got fleet.Config
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLongPoll(t *testing.T) {
	// A poll interval too long to matter: the change through this
	// server's API must wake the waiters by itself.
	f := newFixture(t, "", Options{ConfigPoll: time.Hour})

	// Nothing changes: 304 after wait.
	r := <-longPoll(t, f.url, f.agent.Token, 0, 1)
	if r.code != 304 || r.elapsed < time.Second || r.elapsed > 3*time.Second {
		t.Errorf("poll without change: %d after %v, want 304 after about 1s", r.code, r.elapsed)
	}
	// An agent with another version gets the configuration at once.
	r = <-longPoll(t, f.url, f.agent.Token, 7, 30)
	if r.code != 200 || r.cfg.Version != 0 || r.elapsed > time.Second {
		t.Errorf("poll with version 7: %d version %d after %v, want 200 version 0 at once", r.code, r.cfg.Version, r.elapsed)
	}

	// Ten agents wait; a change through the API wakes every one within a
	// second.
	var polls []<-chan pollResult
	for range 10 {
		polls = append(polls, longPoll(t, f.url, f.agent.Token, 0, 30))
	}
	time.Sleep(300 * time.Millisecond) // all waiting
	set := time.Now()
	cfg := putConfig(t, f.url, f.admin, fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}}}})
	var worst time.Duration
	for _, p := range polls {
		r := <-p
		if r.code != 200 || r.cfg.Version != cfg.Version || len(r.cfg.Rules) != 1 {
			t.Errorf("poll woken: %d %+v, want 200 with version %d", r.code, r.cfg, cfg.Version)
		}
		worst = max(worst, time.Since(set))
	}
	t.Logf("10 long polls woken by a change through the API within %v", worst)
	if worst > time.Second {
		t.Errorf("long polls woken after %v, want < 1s", worst)
	}
}

// TestLongPollOtherServer: a change made through server A reaches an agent
// waiting on server B, which shares A's database, by B's polling.
func TestLongPollOtherServer(t *testing.T) {
	testLongPollOtherServer(t, sqliteDSN(t))
}

func testLongPollOtherServer(t *testing.T, dsn string) {
	f := newFixture(t, dsn, Options{})
	stB := openStore(t, dsn)
	_, urlB := startServer(t, stB, Options{})
	for i := range 3 {
		cur := <-longPoll(t, urlB, f.agent.Token, 0, 0)
		have := cur.cfg.Version
		if cur.code == 304 {
			have = 0
		}
		p := longPoll(t, urlB, f.agent.Token, have, 30)
		time.Sleep(300 * time.Millisecond)
		set := time.Now()
		cfg := putConfig(t, f.url, f.admin, fleet.Config{Paused: i%2 == 0, Rules: []fleet.Rule{{Targets: []string{"GO-2021-0113"}}}})
		r := <-p
		d := time.Since(set)
		if r.code != 200 || r.cfg.Version != cfg.Version || r.cfg.Paused != cfg.Paused {
			t.Fatalf("agent on B: %d %+v, want 200 with version %d", r.code, r.cfg, cfg.Version)
		}
		t.Logf("change on A reached an agent waiting on B in %v", d)
		if d > time.Second {
			t.Errorf("change on A reached an agent waiting on B in %v, want < 1s", d)
		}
	}
}

// TestConfigChanged: a mounted page that sets the configuration in the
// store itself wakes the long polls with ConfigChanged, without waiting
// for the hub's poll.
func TestConfigChanged(t *testing.T) {
	var st *store.Store // set before the first request
	page := func(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
		mux.Handle("POST /pause", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cfg, err := st.SetConfig(r.Context(), fleet.Config{Paused: true, Rules: []fleet.Rule{}}, AdminName(r.Context()))
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			ConfigChanged(r.Context(), cfg)
		})))
	}
	f := newFixture(t, "", Options{ConfigPoll: time.Hour, Mounts: []Mount{page}})
	st = f.store
	p := longPoll(t, f.url, f.agent.Token, 0, 30)
	time.Sleep(200 * time.Millisecond)
	set := time.Now()
	if code, body := do(t, "POST", f.url+"/pause", f.admin, ""); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	r := <-p
	if r.code != 200 || !r.cfg.Paused || time.Since(set) > time.Second {
		t.Errorf("poll: %d %+v after %v, want 200 paused at once", r.code, r.cfg, time.Since(set))
	}
	// Outside a protected handler it does nothing (and does not panic).
	ConfigChanged(context.Background(), fleet.Config{Version: 99})
}

// TestLongPollNewerThanServer: an agent that got a version from server A
// and asks server B before B's poll saw it is not sent back to the older
// version: B asks the store.
func TestLongPollNewerThanServer(t *testing.T) {
	f := newFixture(t, "", Options{})
	_, urlB := startServer(t, openStore(t, f.dsn), Options{ConfigPoll: time.Hour}) // B never polls
	cfg := putConfig(t, f.url, f.admin, fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}}}})
	r := <-longPoll(t, urlB, f.agent.Token, cfg.Version, 1)
	if r.code != 304 {
		t.Errorf("agent with version %d asking a server that had not seen it: %d version %d, want 304", cfg.Version, r.code, r.cfg.Version)
	}
	// A version newer than the store's (a database replaced): the
	// store's is the one to apply.
	r = <-longPoll(t, urlB, f.agent.Token, cfg.Version+10, 1)
	if r.code != 200 || r.cfg.Version != cfg.Version {
		t.Errorf("agent with a version the store never had: %d version %d, want 200 version %d", r.code, r.cfg.Version, cfg.Version)
	}
}
