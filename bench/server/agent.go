package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// agent is one simulated agent: it speaks internal/fleet's protocol with
// fleet.Client, reach's own (enrol, report batches, long-poll the
// configuration), which retries a batch with its sequence number until
// the server answers. One goroutine at a time uses an agent, so that its
// batches go in sequence order.
type agent struct {
	n    int
	srv  *server
	c    *fleet.Client
	id   string
	host string
	seq  uint64 // the last sequence number acknowledged
	// k is the number of batches with observations acknowledged: the hit
	// totals of this agent's instances are those after k batches.
	k uint64
	// last is the last batch acknowledged, for resend.
	last *fleet.Batch
}

// hc is the HTTP client of every simulated agent and of the admin side: a
// connection per agent stays open (long polls hold 100 at once). Its
// transport times each attempt of a request (see meter).
var hc = &http.Client{Transport: &meter{base: &http.Transport{
	MaxIdleConns:        1024,
	MaxIdleConnsPerHost: 512,
	IdleConnTimeout:     5 * time.Minute,
	DisableCompression:  true,
}}}

// newClient returns a protocol client of srv with token, patient enough
// for a server under full load.
func newClient(srv *server, token string) (*fleet.Client, error) {
	c, err := fleet.NewClient(srv.base, token)
	if err != nil {
		return nil, err
	}
	c.HTTPClient = hc
	c.Timeout = time.Minute
	c.Attempts = 50
	c.MinBackoff, c.MaxBackoff = 50*time.Millisecond, 2*time.Second
	c.UserAgent = "reach-bench-server"
	return c, nil
}

// enrol makes agent n on srv with an enrolment token.
func enrol(ctx context.Context, srv *server, enrolToken string, n int) (*agent, error) {
	host := fmt.Sprintf("bench-host-%03d", n)
	ec, err := newClient(srv, enrolToken)
	if err != nil {
		return nil, err
	}
	// Enrolments are rate-limited per address (all come from here): the
	// client waits out each 429's Retry-After.
	resp, err := ec.Enrol(ctx, fleet.EnrolRequest{Hostname: host, ReachVersion: "bench", Labels: map[string]string{"bench": "server"}})
	if err != nil {
		return nil, fmt.Errorf("enrol agent %d on %s: %w", n, srv.name, err)
	}
	c, err := newClient(srv, resp.Token)
	if err != nil {
		return nil, err
	}
	return &agent{n: n, srv: srv, c: c, id: resp.AgentID, host: host}, nil
}

// enrolAll enrols n agents on srv, 8 at a time.
func enrolAll(ctx context.Context, srv *server, enrolToken string, n int) ([]*agent, error) {
	agents := make([]*agent, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			agents[i], errs[i] = enrol(ctx, srv, enrolToken, i)
		})
	}
	wg.Wait()
	return agents, errors.Join(errs...)
}

// sendStats counts what sending cost, over many batches.
type sendStats struct {
	mu        sync.Mutex
	latencies []time.Duration // of every POST answered 200
	limited   int             // 429 answers (retried after Retry-After)
	failed    int             // other failures retried (5xx, connection errors)
	failure   string          // the last of them
}

// call is what meter learns of one call of the client (its attempts).
type call struct {
	st *sendStats
	// ambiguous: an attempt got no answer or a 5xx, and may have
	// stored the batch.
	ambiguous bool
}

type callKey struct{}

// meter is a transport that times each attempt of a client call whose
// context carries a *call, and counts its retries.
type meter struct{ base http.RoundTripper }

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(callKey{}).(*call)
	start := time.Now()
	resp, err := m.base.RoundTrip(req)
	if c == nil {
		return resp, err
	}
	took := time.Since(start)
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	switch {
	case err != nil:
		c.ambiguous = true
		c.st.failed++
		c.st.failure = err.Error()
	case resp.StatusCode == http.StatusOK:
		c.st.latencies = append(c.st.latencies, took)
	case resp.StatusCode == http.StatusTooManyRequests:
		c.st.limited++
	default:
		c.ambiguous = c.ambiguous || resp.StatusCode >= 500
		c.st.failed++
		c.st.failure = resp.Status
	}
	return resp, err
}

// send sends the agent's next batch, with obs and applied; the client
// retries it with the same sequence number until the server answers (as an
// agent must: a batch it got no answer for may have been stored). It
// returns the server's answer.
//
// A batch answered as a duplicate after an attempt without an answer (a
// timeout, a 5xx) was stored by that attempt: retried says so.
func (a *agent) send(ctx context.Context, obs []fleet.Observation, applied *fleet.Applied, st *sendStats) (resp fleet.BatchResponse, retried bool, err error) {
	b := &fleet.Batch{
		AgentID: a.id,
		Seq:     a.seq + 1,
		Sent:    time.Now().UTC(),
		Agent: fleet.AgentState{
			Hostname: a.host, ReachVersion: "bench", Labels: map[string]string{"bench": "server"},
			Processes: len(obs), Probes: 12 * len(obs),
		},
		Observations: obs,
		Applied:      applied,
	}
	c := &call{st: st}
	resp, err = a.c.Send(context.WithValue(ctx, callKey{}, c), b)
	if err != nil {
		return resp, c.ambiguous, fmt.Errorf("agent %s: %w", a.id, err)
	}
	if resp.Seq != b.Seq {
		return resp, c.ambiguous, fmt.Errorf("agent %s: batch %d acknowledged as %d", a.id, b.Seq, resp.Seq)
	}
	a.seq = b.Seq
	a.last = b
	return resp, c.ambiguous, nil
}

// resend sends the last acknowledged batch again, as an agent that lost
// the answer does: the server must answer that it is a duplicate and
// store nothing.
func (a *agent) resend(ctx context.Context, st *sendStats) (fleet.BatchResponse, error) {
	if a.last == nil {
		return fleet.BatchResponse{}, fmt.Errorf("agent %s: no batch sent yet", a.id)
	}
	return a.c.Send(context.WithValue(ctx, callKey{}, &call{st: st}), a.last)
}

// pollConfig asks for the configuration once the server's version differs
// from version, waiting at most wait: nil when it did not change.
func (a *agent) pollConfig(ctx context.Context, version int64, wait time.Duration) (*fleet.Config, error) {
	c, changed, err := a.c.Config(ctx, version, wait)
	if err != nil || !changed {
		return nil, err
	}
	return c, nil
}

// doJSON sends in (unless nil) as JSON with a bearer token and decodes a
// 2xx answer into out (unless nil); it returns the status code, and an
// error for anything but 2xx. The admin side's requests go through it.
func doJSON(ctx context.Context, method, u, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	r, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return r.StatusCode, err
	}
	if r.StatusCode/100 != 2 {
		return r.StatusCode, fmt.Errorf("%s %s: %s: %s", method, u, r.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return r.StatusCode, fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return r.StatusCode, nil
}
