package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// propagation is one configuration change's way to the agents, from just
// before the admin's PUT.
type propagation struct {
	received time.Duration // the last agent's long poll returned it
	acked    time.Duration // the last agent's batch saying it applied it was answered
	shown    time.Duration // GET /api/v1/config/agents showed all applied
}

// configPaths are the admin API's.
const (
	pathConfig       = "/api/v1/config"
	pathConfigAgents = "/api/v1/config/agents"
)

// propagate changes srv's configuration once while agents long-poll it,
// and measures how long until every agent received the change, applied
// it (said so in its next batch) and the server shows it applied.
func propagate(ctx context.Context, srv *server, agents []*agent, led *ledger, roundNo int) (propagation, error) {
	var cur fleet.Config
	if _, err := doJSON(ctx, "GET", srv.base+pathConfig, srv.admin, nil, &cur); err != nil {
		return propagation{}, err
	}
	if cur.Version == 0 {
		// Agents ask with the version they have; 0 is "none yet".
		var err error
		if cur, err = putConfig(ctx, srv, 0); err != nil {
			return propagation{}, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type got struct {
		received, acked time.Time
		err             error
	}
	results := make(chan got, len(agents))
	var ready sync.WaitGroup
	ready.Add(len(agents))
	var t0 time.Time
	var t0mu sync.Mutex
	for _, a := range agents {
		go func() {
			// The first request returns the current version at once:
			// the agent is connected and has it.
			c, err := a.pollConfig(ctx, 0, time.Second)
			ready.Done()
			if err == nil && c == nil {
				err = errors.New("no configuration at the first request")
			}
			if err != nil {
				results <- got{err: err}
				return
			}
			have := c.Version
			for {
				c, err := a.pollConfig(ctx, have, 30*time.Second)
				if err != nil {
					results <- got{err: err}
					return
				}
				if c == nil {
					continue // 304: asks again
				}
				at := time.Now()
				t0mu.Lock()
				changed := !t0.IsZero()
				t0mu.Unlock()
				if !changed {
					results <- got{err: fmt.Errorf("agent %s: configuration version %d before the change", a.id, c.Version)}
					return
				}
				resp, retried, err := a.send(ctx, nil, &fleet.Applied{Version: c.Version, At: at.UTC()}, &sendStats{})
				if err == nil {
					led.acked(resp, retried, nil)
				}
				results <- got{received: at, acked: time.Now(), err: err}
				return
			}
		}()
	}
	ready.Wait()
	time.Sleep(300 * time.Millisecond) // every agent waits in its long poll
	t0mu.Lock()
	t0 = time.Now()
	t0mu.Unlock()
	next, err := putConfig(ctx, srv, roundNo)
	if err != nil {
		return propagation{}, err
	}
	if next.Version == cur.Version {
		return propagation{}, fmt.Errorf("%s: PUT %s kept version %d", srv.name, pathConfig, cur.Version)
	}
	var p propagation
	type applied struct {
		d   time.Duration
		err error
	}
	shown := make(chan applied, 1)
	go func() {
		d, err := waitApplied(ctx, srv, agents, next.Version, t0)
		shown <- applied{d, err}
	}()
	timeout := time.After(time.Minute)
	for range agents {
		select {
		case g := <-results:
			if g.err != nil {
				return p, g.err
			}
			p.received = max(p.received, g.received.Sub(t0))
			p.acked = max(p.acked, g.acked.Sub(t0))
		case <-timeout:
			return p, fmt.Errorf("%s: configuration version %d not received by every agent within a minute", srv.name, next.Version)
		}
	}
	a := <-shown
	p.shown = a.d
	return p, a.err
}

// putConfig sets a configuration that differs for every round.
func putConfig(ctx context.Context, srv *server, roundNo int) (fleet.Config, error) {
	cfg := fleet.Config{Rules: []fleet.Rule{
		{Targets: []string{"*"}},
		{Service: "svc-001", Environment: "prod", Targets: []string{fmt.Sprintf("GO-2024-%04d", 1000+roundNo)}, Count: roundNo%2 == 0},
	}}
	var out fleet.Config
	if _, err := doJSON(ctx, "PUT", srv.base+pathConfig, srv.admin, cfg, &out); err != nil {
		return out, err
	}
	return out, nil
}

// waitApplied polls the server until it shows every one of agents with
// version applied, and returns when that was, from t0.
func waitApplied(ctx context.Context, srv *server, agents []*agent, version int64, t0 time.Time) (time.Duration, error) {
	ours := make(map[string]bool, len(agents))
	for _, a := range agents {
		ours[a.id] = true
	}
	deadline := t0.Add(time.Minute)
	for time.Now().Before(deadline) {
		var rows []store.ConfigAgent
		if _, err := doJSON(ctx, "GET", srv.base+pathConfigAgents, srv.admin, nil, &rows); err != nil {
			return 0, err
		}
		at := time.Now()
		n := 0
		for _, r := range rows {
			if ours[r.AgentID] && r.Version >= version && r.Error == "" {
				n++
			}
		}
		if n == len(agents) {
			return at.Sub(t0), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: %s does not show version %d applied by all %d agents after a minute", srv.name, pathConfigAgents, version, len(agents))
}
