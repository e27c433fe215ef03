package fleet_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server"
	"github.com/reach-sca/reach/internal/server/store"
)

// realServer serves the real HTTP server on a SQLite store in a temporary
// directory.
func realServer(t *testing.T, opts server.Options) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "reach.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = st
	opts.ConfigPoll = 20 * time.Millisecond
	srv, err := server.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		st.Close()
	})
	return st, hs.URL
}

// enrolled returns a client of a real server (realServer) with an agent
// enrolled through it, and the enrolment token it used.
func enrolled(t *testing.T, opts server.Options) (*store.Store, *fleet.Client, fleet.EnrolResponse, string) {
	t.Helper()
	ctx := context.Background()
	st, url := realServer(t, opts)
	enrol, err := st.CreateEnrolToken(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fleet.NewClient(url, enrol)
	if err != nil {
		t.Fatal(err)
	}
	c.MinBackoff, c.MaxBackoff = time.Millisecond, 10*time.Millisecond
	id, err := c.Enrol(ctx, fleet.EnrolRequest{Hostname: "h1", ReachVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c.Token = id.Token
	return st, c, id, enrol
}

// TestClientRealServer speaks to the real server: enrolment, a batch sent
// twice with one Seq stored once, a batch of another agent refused with
// the server's reason, a wrong token, and a configuration change reaching
// a waiting long poll.
func TestClientRealServer(t *testing.T) {
	ctx := context.Background()
	st, c, id, enrol := enrolled(t, server.Options{})
	if !strings.HasPrefix(id.Token, fleet.AgentTokenPrefix) || !strings.HasPrefix(enrol, fleet.EnrolTokenPrefix) {
		t.Errorf("tokens %q... and %q..., want the prefixes %s and %s", enrol[:12], id.Token[:12], fleet.EnrolTokenPrefix, fleet.AgentTokenPrefix)
	}

	r := &report.Report{Mode: "run", Started: time.Now().Add(-time.Second), Finished: time.Now(), Binaries: []*report.Binary{{
		Path: "/bin/app", BuildID: "b1", GoVersion: "go1.26.0", MainModule: "example.com/app",
		Modules: []report.Module{{Path: "golang.org/x/text", Version: "v0.3.5"}},
		Findings: []*report.Finding{{OSV: "GO-2021-0113", Module: "golang.org/x/text", Version: "v0.3.5", Status: report.Reached,
			Symbols: []*report.Symbol{{Package: "golang.org/x/text/language", Name: "Parse", Status: report.Reached, Hits: 1,
				Callsites: []*report.Callsite{{Function: "main.main", File: "/src/main.go", Line: 10, Hits: 1}}}}}},
	}}}
	b := fleet.ReportBatch(r, fleet.Source{Instance: fleet.NewInstance(), Host: "h1", Service: "app"}, id.AgentID, 1)
	first, err := c.Send(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Send(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || first.Updates == 0 || !again.Duplicate || again.Updates != 0 && again.Updates != first.Updates {
		t.Errorf("first %+v, again %+v: want the second a duplicate", first, again)
	}
	fs, err := st.Findings(ctx, store.Filter{Service: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Hits != 1 {
		t.Errorf("findings %+v, want one with 1 hit", fs)
	}

	other := *b
	other.AgentID, other.Seq = "agt_someone_else", 2
	_, err = c.Send(ctx, &other)
	var he *fleet.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || !strings.Contains(err.Error(), "another agent's ID") {
		t.Errorf("another agent's batch: %v, want 403 saying so", err)
	}

	bad, _ := fleet.NewClient(c.BaseURL, "reach_agent_nope")
	if _, err := bad.Send(ctx, b); !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "enrol again") {
		t.Errorf("a wrong token: %v, want 401 saying to enrol again", err)
	}

	// A long poll that waits gets the change made meanwhile.
	cfg, changed, err := c.Config(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := int64(0)
	if changed {
		have = cfg.Version
	}
	got := make(chan error, 1)
	var next *fleet.Config
	start := time.Now()
	go func() {
		var err error
		next, _, err = c.Config(ctx, have, 20*time.Second)
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	set, err := st.SetConfig(ctx, fleet.Config{Rules: []fleet.Rule{{Service: "app", Targets: []string{"GO-2021-0113"}}}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if next == nil || next.Version != set.Version || len(next.Rules) != 1 {
		t.Errorf("long poll got %+v, want version %d", next, set.Version)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the change took %s to arrive", d)
	}
}

// TestClientRealServerLimits checks the client against the server's
// limits: a 429 with Retry-After from its rate limit is waited and the
// batch arrives once.
func TestClientRealServerLimits(t *testing.T) {
	ctx := context.Background()
	_, c, id, _ := enrolled(t, server.Options{AgentRate: 1, AgentBurst: 1})
	start := time.Now()
	for seq := uint64(1); seq <= 3; seq++ {
		b := &fleet.Batch{AgentID: id.AgentID, Seq: seq, Sent: time.Now(), Agent: fleet.AgentState{Hostname: "h1"}}
		resp, err := c.Send(ctx, b)
		if err != nil {
			t.Fatalf("batch %d: %v", seq, err)
		}
		if resp.Duplicate {
			t.Errorf("batch %d stored twice", seq)
		}
	}
	// One request a second: the second and third batches waited.
	if d := time.Since(start); d < time.Second {
		t.Errorf("3 batches at 1/s took %s: the rate limit did not bite, the test proves nothing", d)
	}
}
