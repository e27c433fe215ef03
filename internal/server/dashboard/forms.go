package dashboard

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// blankRules is how many empty rule rows the configuration form offers
// for new rules.
const blankRules = 3

// ruleRow is one row of the configuration form.
type ruleRow struct {
	fleet.Rule
	Targets string // space-separated
}

func (d *Dashboard) config(w http.ResponseWriter, r *http.Request) error {
	cfg, err := d.st.Config(r.Context())
	if err != nil {
		return err
	}
	agents, err := d.st.ConfigAgents(r.Context())
	if err != nil {
		return err
	}
	data := struct {
		base
		Config  fleet.Config
		Rules   []ruleRow
		Agents  []store.ConfigAgent
		Applied int // agents on the current version without error
		Saved   bool
	}{base: base{Title: "Configuration", Nav: "config"}, Config: cfg, Agents: agents, Saved: r.URL.Query().Has("saved")}
	for _, rule := range cfg.Rules {
		data.Rules = append(data.Rules, ruleRow{rule, strings.Join(rule.Targets, " ")})
	}
	for range blankRules {
		data.Rules = append(data.Rules, ruleRow{})
	}
	for _, a := range agents {
		if a.Version == cfg.Version && a.Error == "" {
			data.Applied++
		}
	}
	return d.render(w, r, "config", &data.base, &data)
}

// setConfig stores the configuration form as the next version. The form
// carries the version it was made from: when another change came in
// between, it is refused rather than silently undone.
func (d *Dashboard) setConfig(w http.ResponseWriter, r *http.Request) error {
	if err := checkCSRF(w, r); err != nil {
		return err
	}
	cfg, err := configOf(r)
	if err != nil {
		return err
	}
	cur, err := d.st.Config(r.Context())
	if err != nil {
		return err
	}
	if from := r.PostForm.Get("version"); from != strconv.FormatInt(cur.Version, 10) {
		return &httpError{http.StatusConflict, fmt.Sprintf("the configuration changed to version %d while you edited version %s: reload the page, and make your change again", cur.Version, from)}
	}
	saved, err := d.st.SetConfig(r.Context(), cfg, d.user(r))
	if err != nil {
		return err
	}
	if d.opts.ConfigChanged != nil {
		d.opts.ConfigChanged(r.Context(), saved)
	}
	d.log.Info("configuration set", "version", saved.Version, "by", d.user(r), "paused", saved.Paused, "rules", len(saved.Rules))
	http.Redirect(w, r, "/config?saved="+strconv.FormatInt(saved.Version, 10), http.StatusSeeOther)
	return nil
}

// configOf reads the configuration form: rule rows whose targets are
// empty are dropped.
func configOf(r *http.Request) (fleet.Config, error) {
	f := r.PostForm
	cfg := fleet.Config{Paused: f.Get("paused") == "on", Rules: []fleet.Rule{}}
	svc, env, targets, mode := f["rule_service"], f["rule_environment"], f["rule_targets"], f["rule_mode"]
	if len(env) != len(svc) || len(targets) != len(svc) || len(mode) != len(svc) {
		return cfg, badRequest("the configuration form's rule rows are incomplete: reload the page")
	}
	for i := range svc {
		ts := strings.FieldsFunc(targets[i], func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r' })
		if len(ts) == 0 {
			continue
		}
		if mode[i] != "count" && mode[i] != "once" {
			return cfg, badRequest(fmt.Sprintf("rule %d: mode %q: want count or once", i+1, mode[i]))
		}
		cfg.Rules = append(cfg.Rules, fleet.Rule{
			Service:     strings.TrimSpace(svc[i]),
			Environment: strings.TrimSpace(env[i]),
			Targets:     ts,
			Count:       mode[i] == "count",
		})
	}
	return cfg, nil
}

// triage applies the triage form: to the selected findings (scope
// "findings", fields "finding"), to the OSV entries of the selected
// findings, each across every service ("their_osvs"), to an OSV across
// every service ("osv"), to a whole service ("service"), or to an OSV in
// one service ("osv_service"); then it sends the browser back to the
// page.
func (d *Dashboard) triage(w http.ResponseWriter, r *http.Request) error {
	if err := checkCSRF(w, r); err != nil {
		return err
	}
	f := r.PostForm
	t, err := triageOf(f.Get("state"), f.Get("justification"), f.Get("note"), f.Get("expires"))
	if err != nil {
		return err
	}
	t.By = d.user(r)
	var reqs []store.TriageRequest
	switch scope := f.Get("scope"); scope {
	case "findings", "their_osvs":
		seen := map[string]bool{}
		for _, s := range f["finding"] {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id <= 0 {
				return badRequest(fmt.Sprintf("finding %q is not a finding ID", s))
			}
			if scope == "findings" {
				reqs = append(reqs, store.TriageRequest{FindingID: id, Triage: t})
				continue
			}
			// Their OSV entries, each in every service.
			fd, err := d.st.Finding(r.Context(), id)
			if err != nil {
				return err
			}
			if !seen[fd.OSV] {
				seen[fd.OSV] = true
				reqs = append(reqs, store.TriageRequest{OSV: fd.OSV, Triage: t})
			}
		}
		if len(reqs) == 0 {
			return badRequest("no finding selected: tick the findings to triage, or choose a bulk scope")
		}
	case "osv", "service", "osv_service":
		req := store.TriageRequest{Triage: t}
		if scope != "service" {
			req.OSV = f.Get("osv")
		}
		if scope != "osv" {
			req.Service = f.Get("service")
		}
		if scope != "service" && req.OSV == "" || scope != "osv" && req.Service == "" {
			return badRequest("scope " + scope + " needs its OSV and service")
		}
		reqs = append(reqs, req)
	default:
		return badRequest(fmt.Sprintf("scope %q: want findings, their_osvs, osv, service or osv_service", scope))
	}
	n := 0
	for _, req := range reqs {
		k, err := d.st.SetTriage(r.Context(), req)
		if err != nil {
			return err
		}
		n += k
	}
	d.log.Info("triage", "by", t.By, "state", t.State, "requests", len(reqs), "findings", n)
	http.Redirect(w, r, localPath(f.Get("return")), http.StatusSeeOther)
	return nil
}

// triageOf checks the triage fields. expires is a day (YYYY-MM-DD): the
// state lasts until the end of it, UTC.
func triageOf(state, just, note, expires string) (store.Triage, error) {
	t := store.Triage{State: state, Note: strings.TrimSpace(note)}
	if !slices.Contains(triageStates, state) {
		return t, badRequest(fmt.Sprintf("triage state %q: want one of %s", state, strings.Join(triageStates, ", ")))
	}
	if state == store.StateNotAffected {
		if !slices.Contains(store.Justifications, just) {
			return t, badRequest("not_affected needs a justification, one of " + strings.Join(store.Justifications, ", "))
		}
		t.Justification = just
	}
	if len(t.Note) > 4000 {
		return t, badRequest("the note is longer than 4000 bytes")
	}
	if expires != "" {
		day, err := time.Parse(time.DateOnly, expires)
		if err != nil {
			return t, badRequest(fmt.Sprintf("expiry %q: want a day as YYYY-MM-DD", expires))
		}
		end := day.Add(24*time.Hour - time.Second)
		t.Expires = &end
	}
	return t, nil
}
