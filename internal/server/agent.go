package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// The agent API decodes bodies leniently: fields it does not know are
// ignored, not refused. Agents are updated on their own schedule, and an
// agent newer than its server adds fields to the protocol (additions
// only: a change of meaning gets a new path). Ignoring them costs nothing
// an attacker could use: the body is bounded first, and what the server
// reads is checked (by the store) before anything is stored. The admin
// API, written by people and the dashboard, is strict instead: a
// misspelt field there would silently do nothing.

// enrolBytes bounds an enrolment request.
const enrolBytes = 64 << 10

// enrol makes an agent with an enrolment token.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	if !s.rateLimit(w, addrKey(r)) {
		return
	}
	token := bearer(r)
	if token == "" || len(token) > maxTokenLen {
		unauthorized(w, "no enrolment token: send Authorization: Bearer TOKEN with a token from 'reach server enrol-token'")
		return
	}
	var req fleet.EnrolRequest
	if err := decodeJSON(w, r, enrolBytes, false, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.store.Enrol(r.Context(), token, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("agent enrolled", "agent", resp.AgentID, "hostname", req.Hostname)
	writeJSON(w, http.StatusOK, resp)
}

// report stores a batch of the token's agent.
func (s *Server) report(w http.ResponseWriter, r *http.Request, agent *store.Agent) {
	var b fleet.Batch
	if err := decodeJSON(w, r, fleet.MaxBatchBytes, false, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if b.AgentID == "" {
		// The token says which agent: a sender that has only a token
		// (reach run with an agent token) leaves the ID out.
		b.AgentID = agent.ID
	}
	if b.AgentID != agent.ID {
		writeError(w, http.StatusForbidden, fmt.Sprintf("batch of agent %.64q sent with the token of agent %s", b.AgentID, agent.ID))
		return
	}
	if b.Seq == 0 {
		writeError(w, http.StatusBadRequest, "batch without seq: number an agent's batches from 1")
		return
	}
	res, err := s.store.Ingest(r.Context(), agent.ID, &b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fleet.BatchResponse{
		Seq:           b.Seq,
		Duplicate:     res.Duplicate,
		Updates:       res.Updates,
		ConfigVersion: s.hub.version(),
	})
}

// agentConfig answers the configuration as soon as its version differs
// from the agent's (?version=N), or 304 after ?wait=S seconds (at most
// fleet.MaxWait) without a change, or at once when the server shuts
// down. It holds one of the MaxConcurrent slots only to authenticate:
// a waiting long poll costs a goroutine, not a database connection.
func (s *Server) agentConfig(w http.ResponseWriter, r *http.Request) {
	if !s.acquire(r) {
		busy(w)
		return
	}
	_, ok := s.authAgent(w, r)
	s.release()
	if !ok {
		return
	}
	q := r.URL.Query()
	have, err := queryInt(q.Get("version"), 0, "version")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	wait, err := queryInt(q.Get("wait"), 0, "wait")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if max := int64(fleet.MaxWait / time.Second); wait > max {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("wait %d: at most %d seconds", wait, max))
		return
	}
	if cur, _, _ := s.hub.current(); have > cur.Version {
		// The agent knows a newer version than this server: another
		// server set it less than a poll interval ago. Ask the store, so
		// as not to send the agent back to the older one. (Newer than the
		// store's too: the database was replaced; the store is right.)
		if !s.acquire(r) {
			busy(w)
			return
		}
		err := s.hub.catchUp(r.Context())
		s.release()
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	timer := time.NewTimer(time.Duration(wait) * time.Second)
	defer timer.Stop()
	for {
		cfg, changed, closed := s.hub.current()
		if cfg.Version != have {
			writeJSON(w, http.StatusOK, cfg)
			return
		}
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-closed:
		case <-r.Context().Done():
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotModified)
		return
	}
}

// queryInt parses a query parameter that must be a whole number from min
// up; "" is min.
func queryInt(v string, min int64, name string) (int64, error) {
	if v == "" {
		return min, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %.32q: not a whole number", name, v)
	}
	if n < min {
		return 0, fmt.Errorf("%s %d: at least %d", name, n, min)
	}
	return n, nil
}
