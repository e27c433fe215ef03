package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// agent is one simulated agent: it speaks internal/fleet's protocol over
// plain net/http (enrol, report batches, long-poll the configuration).
// One goroutine at a time uses an agent, so that its batches go in
// sequence order.
type agent struct {
	n     int
	srv   *server
	id    string
	token string
	host  string
	seq   uint64 // the last sequence number acknowledged
	// k is the number of batches with observations acknowledged: the hit
	// totals of this agent's instances are those after k batches.
	k uint64
	// last is the body of the last batch acknowledged, for resend.
	last []byte
}

// hc is the HTTP client of every simulated agent and of the admin side: a
// connection per agent stays open (long polls hold 100 at once).
var hc = &http.Client{Transport: &http.Transport{
	MaxIdleConns:        1024,
	MaxIdleConnsPerHost: 512,
	IdleConnTimeout:     5 * time.Minute,
	DisableCompression:  true,
}}

// enrol makes agent n on srv with an enrolment token.
func enrol(ctx context.Context, srv *server, enrolToken string, n int) (*agent, error) {
	host := fmt.Sprintf("bench-host-%03d", n)
	req := fleet.EnrolRequest{Hostname: host, ReachVersion: "bench", Labels: map[string]string{"bench": "server"}}
	var resp fleet.EnrolResponse
	for {
		// Enrolments are rate-limited per address: all come from here.
		code, err := doJSON(ctx, http.MethodPost, srv.base+fleet.PathEnrol, enrolToken, req, &resp)
		if code == http.StatusTooManyRequests {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("enrol agent %d on %s: %w", n, srv.name, err)
		}
		break
	}
	if resp.AgentID == "" || resp.Token == "" {
		return nil, fmt.Errorf("enrol agent %d on %s: no agent ID or token in the answer", n, srv.name)
	}
	return &agent{n: n, srv: srv, id: resp.AgentID, token: resp.Token, host: host}, nil
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

func (s *sendStats) add(d time.Duration) {
	s.mu.Lock()
	s.latencies = append(s.latencies, d)
	s.mu.Unlock()
}

// send sends the agent's next batch, with obs and applied, and retries it
// with the same sequence number until the server answers 200 (as an agent
// must: a batch it got no answer for may have been stored). It returns
// the server's answer.
//
// A batch answered as a duplicate after an attempt without an answer (a
// timeout, a 5xx) was stored by that attempt: retried says so.
func (a *agent) send(ctx context.Context, obs []fleet.Observation, applied *fleet.Applied, st *sendStats) (resp fleet.BatchResponse, retried bool, err error) {
	b := fleet.Batch{
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
	body, err := json.Marshal(&b)
	if err != nil {
		return fleet.BatchResponse{}, false, err
	}
	resp, retried, err = a.post(ctx, body, st)
	if err != nil {
		return resp, retried, err
	}
	if resp.Seq != b.Seq {
		return resp, retried, fmt.Errorf("agent %s: batch %d acknowledged as %d", a.id, b.Seq, resp.Seq)
	}
	a.seq = b.Seq
	a.last = body
	return resp, retried, nil
}

// resend sends the last acknowledged batch again, as an agent that lost
// the answer does: the server must answer that it is a duplicate and
// store nothing.
func (a *agent) resend(ctx context.Context, st *sendStats) (fleet.BatchResponse, error) {
	if a.last == nil {
		return fleet.BatchResponse{}, fmt.Errorf("agent %s: no batch sent yet", a.id)
	}
	resp, _, err := a.post(ctx, a.last, st)
	return resp, err
}

// post posts body until the server answers 200; retried is whether an
// earlier attempt got no answer or a 5xx (and so may have been stored).
func (a *agent) post(ctx context.Context, body []byte, st *sendStats) (resp fleet.BatchResponse, retried bool, err error) {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		code, retryAfter, err := a.postOnce(ctx, body, &resp)
		switch {
		case err == nil && code == http.StatusOK:
			st.add(time.Since(start))
			return resp, retried, nil
		case ctx.Err() != nil:
			return resp, retried, ctx.Err()
		case attempt >= 50:
			return resp, retried, fmt.Errorf("agent %s: batch not stored after %d attempts: %v (HTTP %d)", a.id, attempt+1, err, code)
		case code == http.StatusTooManyRequests:
			st.mu.Lock()
			st.limited++
			st.mu.Unlock()
			time.Sleep(retryAfter)
		case err != nil || code >= 500:
			retried = true
			st.mu.Lock()
			st.failed++
			st.failure = fmt.Sprint(err)
			st.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		default:
			return resp, retried, fmt.Errorf("agent %s: batch rejected: %v", a.id, err)
		}
	}
}

// postOnce posts a batch once: the status code, the Retry-After of a 429.
func (a *agent) postOnce(ctx context.Context, body []byte, resp *fleet.BatchResponse) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.srv.base+fleet.PathReport, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	r, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return r.StatusCode, 0, err
	}
	switch r.StatusCode {
	case http.StatusOK:
		return r.StatusCode, 0, json.Unmarshal(data, resp)
	case http.StatusTooManyRequests:
		wait := time.Second
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		return r.StatusCode, wait, errors.New(r.Status)
	}
	return r.StatusCode, 0, fmt.Errorf("%s: %s", r.Status, bytes.TrimSpace(data))
}

// pollConfig asks for the configuration once the server's version differs
// from version, waiting at most wait: nil when it did not change.
func (a *agent) pollConfig(ctx context.Context, version int64, wait time.Duration) (*fleet.Config, error) {
	u := a.srv.base + fleet.PathConfig + "?" + url.Values{
		"version": {strconv.FormatInt(version, 10)},
		"wait":    {strconv.Itoa(int(wait.Seconds()))},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	r, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	switch r.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
		var c fleet.Config
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("configuration of agent %s: %w", a.id, err)
		}
		return &c, nil
	}
	return nil, fmt.Errorf("configuration of agent %s: %s: %s", a.id, r.Status, bytes.TrimSpace(data))
}

// doJSON sends in (unless nil) as JSON with a bearer token and decodes a
// 2xx answer into out (unless nil); it returns the status code, and an
// error for anything but 2xx.
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
