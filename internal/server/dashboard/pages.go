package dashboard

import (
	"cmp"
	"net/http"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// statusCount is one status's counts in the overview.
type statusCount struct {
	Status   report.Status
	Findings int
	Vulns    int
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	o, err := d.st.Overview(r.Context(), f)
	if err != nil {
		return err
	}
	data := struct {
		base
		O      *store.Overview
		Counts []statusCount
		Chart  chart
		Next   int // offset of the next page of the ranking; 0 for none
	}{base: base{Title: "Fleet overview", Nav: "overview", Filter: f, Filters: true}, O: o, Chart: timelineChart(o.Timeline)}
	for _, s := range statuses {
		data.Counts = append(data.Counts, statusCount{s, o.Findings[s], o.Vulns[s]})
	}
	if n := cmp.Or(f.Limit, store.DefaultLimit); len(o.Ranked) == n {
		data.Next = f.Offset + n
	}
	return d.render(w, r, "overview", &data.base, &data)
}

// findingsPage is the part of the vulnerability and service pages that
// lists findings, with their triage form.
type findingsPage struct {
	Findings []store.Finding
	// OSV and Service are the page's vulnerability and service, "" for
	// none: the bulk triage scopes offered, and columns not shown.
	OSV, Service string
	Next         int // offset of the next page; 0 for none
	Prev         int // offset of the previous page; -1 for none
}

func pageOf(fs []store.Finding, f store.Filter) findingsPage {
	p := findingsPage{Findings: fs, Prev: -1}
	n := cmp.Or(f.Limit, store.DefaultLimit)
	if len(fs) == n {
		p.Next = f.Offset + n
	}
	if f.Offset > 0 {
		p.Prev = max(f.Offset-n, 0)
	}
	return p
}

func (d *Dashboard) vuln(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	osv := r.PathValue("osv")
	v, err := d.st.Vuln(r.Context(), osv, f)
	if err != nil {
		return err
	}
	data := struct {
		base
		V        *store.Vuln
		Upgrades []upgrade
		Page     findingsPage
	}{base: base{Title: osv, Nav: "overview", Filter: f, Filters: true}, V: v, Upgrades: upgrades(v.Findings), Page: pageOf(v.Findings, f)}
	data.Page.OSV, data.Page.Service = osv, f.Service
	return d.render(w, r, "vuln", &data.base, &data)
}

func (d *Dashboard) services(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	list, err := d.st.Services(r.Context(), f)
	if err != nil {
		return err
	}
	data := struct {
		base
		Services []store.ServiceSummary
	}{base{Title: "Services", Nav: "services", Filter: f, Filters: true}, list}
	return d.render(w, r, "services", &data.base, &data)
}

func (d *Dashboard) service(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	svc, err := d.st.Service(r.Context(), name, f)
	if err != nil {
		return err
	}
	f.Service = "" // the page is the service's: links from it keep the other filters
	data := struct {
		base
		S      *store.Service
		Counts []statusCount
		Page   findingsPage
	}{base: base{Title: name, Nav: "services", Filter: f, Filters: true}, S: svc, Page: pageOf(svc.Findings, f)}
	data.Page.Service = name
	for _, s := range statuses {
		data.Counts = append(data.Counts, statusCount{Status: s, Findings: svc.Counts[s]})
	}
	return d.render(w, r, "service", &data.base, &data)
}

func (d *Dashboard) agents(w http.ResponseWriter, r *http.Request) error {
	agents, err := d.st.Agents(r.Context())
	if err != nil {
		return err
	}
	cfg, err := d.st.Config(r.Context())
	if err != nil {
		return err
	}
	data := struct {
		base
		Agents []store.Agent
		Config fleet.Config
	}{base{Title: "Agents", Nav: "agents"}, agents, cfg}
	return d.render(w, r, "agents", &data.base, &data)
}
