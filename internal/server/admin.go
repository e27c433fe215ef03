package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// adminBytes bounds the body of an admin request.
const adminBytes = 1 << 20

// maxLimit bounds a query's page size.
const maxLimit = 10000

// ParseFilter reads the filters of a query string, as the admin API and
// the dashboard's pages take them: service, environment, status, osv,
// triage, q, limit and offset. Its errors say which parameter is wrong.
func ParseFilter(q url.Values) (store.Filter, error) {
	f := store.Filter{
		Service:     q.Get("service"),
		Environment: q.Get("environment"),
		OSV:         q.Get("osv"),
		Triage:      q.Get("triage"),
		Query:       q.Get("q"),
	}
	if v := q.Get("status"); v != "" {
		st, err := report.ParseStatus(v)
		if err != nil {
			return f, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
		f.Status = st
	}
	switch f.Triage {
	case "", "none", store.StateUnderInvestigation, store.StateAffected, store.StateNotAffected, store.StateFixed:
	default:
		return f, fmt.Errorf("%w: triage %.32q: use none, under_investigation, affected, not_affected or fixed", store.ErrInvalid, f.Triage)
	}
	limit, err := queryInt(q.Get("limit"), 0, "limit")
	if err != nil {
		return f, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	offset, err := queryInt(q.Get("offset"), 0, "offset")
	if err != nil {
		return f, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if limit > maxLimit {
		return f, fmt.Errorf("%w: limit %d: at most %d", store.ErrInvalid, limit, maxLimit)
	}
	if offset > 1<<31 {
		return f, fmt.Errorf("%w: offset %d: too large", store.ErrInvalid, offset)
	}
	f.Limit, f.Offset = int(limit), int(offset)
	return f, nil
}

// answer writes v as JSON, or fails with err.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// filter parses r's filters, or answers 400 and reports false.
// filtered answers with the JSON of query, a store query given the
// request's filters.
func (s *Server) filtered(w http.ResponseWriter, r *http.Request, query func(store.Filter) (any, error)) {
	if f, ok := s.filter(w, r); ok {
		v, err := query(f)
		s.answer(w, r, v, err)
	}
}

func (s *Server) filter(w http.ResponseWriter, r *http.Request) (store.Filter, bool) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return f, false
	}
	return f, true
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	s.filtered(w, r, func(f store.Filter) (any, error) { return s.store.Overview(r.Context(), f) })
}

func (s *Server) findings(w http.ResponseWriter, r *http.Request) {
	s.filtered(w, r, func(f store.Filter) (any, error) { return s.store.Findings(r.Context(), f) })
}

func (s *Server) finding(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("finding ID %.32q: not a positive whole number", r.PathValue("id")))
		return
	}
	v, err := s.store.Finding(r.Context(), id)
	s.answer(w, r, v, err)
}

func (s *Server) vuln(w http.ResponseWriter, r *http.Request) {
	s.filtered(w, r, func(f store.Filter) (any, error) { return s.store.Vuln(r.Context(), r.PathValue("osv"), f) })
}

func (s *Server) services(w http.ResponseWriter, r *http.Request) {
	s.filtered(w, r, func(f store.Filter) (any, error) { return s.store.Services(r.Context(), f) })
}

func (s *Server) service(w http.ResponseWriter, r *http.Request) {
	s.filtered(w, r, func(f store.Filter) (any, error) { return s.store.Service(r.Context(), r.PathValue("name"), f) })
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.Agents(r.Context())
	s.answer(w, r, v, err)
}

func (s *Server) configAgents(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.ConfigAgents(r.Context())
	s.answer(w, r, v, err)
}

// TriageBody is the JSON of POST /api/v1/triage: a state for one finding
// (finding_id), an OSV across every service (osv), a whole service
// (service), or an OSV in one service (both). Who decided is the
// administrator logged in.
type TriageBody struct {
	FindingID     int64      `json:"finding_id,omitempty"`
	Service       string     `json:"service,omitempty"`
	OSV           string     `json:"osv,omitempty"`
	State         string     `json:"state"`
	Justification string     `json:"justification,omitempty"`
	Note          string     `json:"note,omitempty"`
	Expires       *time.Time `json:"expires,omitempty"`
}

// TriageResult answers a triage request.
type TriageResult struct {
	Changed int `json:"changed"` // findings whose triage changed
}

func (s *Server) triage(w http.ResponseWriter, r *http.Request) {
	var b TriageBody
	if err := decodeJSON(w, r, adminBytes, true, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if b.FindingID == 0 && b.Service == "" && b.OSV == "" {
		writeError(w, http.StatusBadRequest, "triage of nothing: give finding_id, osv, service, or osv and service")
		return
	}
	now := time.Now().UTC()
	n, err := s.store.SetTriage(r.Context(), store.TriageRequest{
		FindingID: b.FindingID,
		Service:   b.Service,
		OSV:       b.OSV,
		Triage: store.Triage{
			State:         b.State,
			Justification: b.Justification,
			Note:          b.Note,
			By:            AdminName(r.Context()),
			At:            &now,
			Expires:       b.Expires,
		},
	})
	s.answer(w, r, TriageResult{Changed: n}, err)
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.Config(r.Context())
	if err == nil {
		s.hub.set(v)
	}
	s.answer(w, r, v, err)
}

// putConfig stores a new configuration and wakes the long polls. A body
// with a version other than 0 must name the current one, else 409: two
// people editing at once do not undo each other's change unseen.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var cfg fleet.Config
	if err := decodeJSON(w, r, adminBytes, true, &cfg); err != nil {
		s.fail(w, r, err)
		return
	}
	if cfg.Version != 0 {
		cur, err := s.store.Config(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if cur.Version != cfg.Version {
			writeError(w, http.StatusConflict, fmt.Sprintf("configuration version %d was changed meanwhile: it is version %d now; reload it and edit again", cfg.Version, cur.Version))
			return
		}
	}
	if cfg.Rules == nil {
		cfg.Rules = []fleet.Rule{}
	}
	for i, rule := range cfg.Rules {
		// The agents parse these selectors: a bad one is refused here,
		// with its rule, rather than by every agent.
		if _, err := observe.NewSelection(rule.Targets...); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("rule %d: %v", i+1, err))
			return
		}
	}
	saved, err := s.store.SetConfig(r.Context(), cfg, AdminName(r.Context()))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.hub.set(saved)
	s.log.Info("configuration changed", "version", saved.Version, "by", saved.UpdatedBy)
	writeJSON(w, http.StatusOK, saved)
}

// EnrolTokenBody is the JSON of POST /api/v1/enrol-tokens.
type EnrolTokenBody struct {
	Name    string     `json:"name"`
	Expires *time.Time `json:"expires,omitempty"`
}

// EnrolTokenResult answers it: the token, shown once.
type EnrolTokenResult struct {
	Token string `json:"token"`
}

func (s *Server) enrolToken(w http.ResponseWriter, r *http.Request) {
	var b EnrolTokenBody
	if err := decodeJSON(w, r, adminBytes, true, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if b.Name == "" {
		writeError(w, http.StatusBadRequest, "enrolment token without a name: say what it is for, such as the hosts it enrols")
		return
	}
	if b.Expires != nil && !b.Expires.After(time.Now()) {
		writeError(w, http.StatusBadRequest, "enrolment token expiring in the past")
		return
	}
	token, err := s.store.CreateEnrolToken(r.Context(), b.Name, b.Expires)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("enrolment token created", "name", b.Name, "by", AdminName(r.Context()))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, EnrolTokenResult{Token: token})
}
