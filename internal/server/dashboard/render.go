package dashboard

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// pageTemplate is one page: the layout with the page's "content".
type pageTemplate = *template.Template

var pageNames = []string{"overview", "vuln", "services", "service", "agents", "config", "error"}

func parsePages() map[string]pageTemplate {
	pages := make(map[string]pageTemplate, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.New(name).Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html"))
	}
	return pages
}

// base is what every page's layout shows.
type base struct {
	Title   string
	Nav     string // the menu entry to highlight
	User    string
	CSRF    string // the form token (csrf.go)
	Return  string // this page's URL, where forms come back to
	Path    string // this page's path, where the filter form goes
	Filter  store.Filter
	Filters bool // show the filter bar
}

// Choices of the filter and triage forms.
var (
	statuses     = []report.Status{report.Reached, report.NotWatched, report.Linked, report.Imported}
	triageStates = []string{store.StateUnderInvestigation, store.StateAffected, store.StateNotAffected, store.StateFixed}
)

// render writes page name with data, whose first field is a base that
// render completes.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, name string, b *base, data any) error {
	b.User = d.user(r)
	b.CSRF = csrfToken(w, r)
	b.Return = r.URL.RequestURI()
	b.Path = r.URL.Path
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(buf.Bytes())
	return err
}

// errorPage shows msg with code.
func (d *Dashboard) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	data := struct {
		base
		Code int
		Msg  string
	}{base{Title: http.StatusText(code)}, code, msg}
	data.User = d.user(r)
	var buf bytes.Buffer
	if err := d.pages["error"].ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

var funcs = template.FuncMap{
	"statuses":       func() []report.Status { return statuses },
	"triageStates":   func() []string { return triageStates },
	"justifications": func() []string { return store.Justifications },
	"time":           fmtTime,
	"timep": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return fmtTime(*t)
	},
	"ago": ago,
	"agop": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return ago(*t)
	},
	"unix": func(t time.Time) int64 { return t.Unix() },
	"unixp": func(t *time.Time) int64 {
		if t == nil {
			return 0
		}
		return t.Unix()
	},
	"join":       strings.Join,
	"short":      short,
	"vulnURL":    func(osv string, f store.Filter) string { return withQuery("/vulns/"+url.PathEscape(osv), f) },
	"serviceURL": func(name string, f store.Filter) string { return withQuery("/services/"+url.PathEscape(name), f) },
	"filterURL": func(path string, f store.Filter, key, value string) string {
		q := filterQuery(f)
		q.Set(key, value)
		return path + "?" + q.Encode()
	},
	"pageURL": func(path string, f store.Filter, offset int) string {
		q := filterQuery(f)
		if f.Limit != 0 {
			q.Set("limit", strconv.Itoa(f.Limit))
		}
		if offset > 0 {
			q.Set("offset", strconv.Itoa(offset))
		}
		if len(q) == 0 {
			return path
		}
		return path + "?" + q.Encode()
	},
	"count": func(m map[report.Status]int, s report.Status) int { return m[s] },
	"add":   func(a, b int) int { return a + b },
	"add1":  func(v int64) int64 { return v + 1 },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"symbol":  symbol,
	"label":   func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"limitOf": func(f store.Filter) int { return cmp.Or(f.Limit, store.DefaultLimit) },
}

// withQuery is path with f's filters as its query.
func withQuery(path string, f store.Filter) string {
	if q := filterQuery(f).Encode(); q != "" {
		return path + "?" + q
	}
	return path
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago says how long before now t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// short abbreviates a build ID.
func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// symbol names a finding's symbol as a reader looks for it.
func symbol(f store.Finding) string {
	switch {
	case f.Symbol != "":
		return f.Package + "." + f.Symbol
	case f.Scope != "":
		return f.Package + " (whole " + f.Scope + ")"
	}
	return f.Package
}

// upgrade is the advice for one module of a vulnerability.
type upgrade struct {
	Module, Versions, Fixed, Command string
}

// upgrades returns, per module of fs, the fixed version and the command
// that upgrades to it, as report's upgrade advice says it.
func upgrades(fs []store.Finding) []upgrade {
	b := &report.Binary{}
	seen := map[[3]string]bool{}
	for _, f := range fs {
		k := [3]string{f.Module, f.Version, f.FixedVersion}
		if seen[k] {
			continue
		}
		seen[k] = true
		b.Findings = append(b.Findings, &report.Finding{OSV: f.OSV, Module: f.Module, Version: f.Version, FixedVersion: f.FixedVersion})
	}
	var out []upgrade
	for _, u := range (&report.Report{Binaries: []*report.Binary{b}}).UpgradeAdvice() {
		out = append(out, upgrade{Module: u.Module, Versions: strings.Join(u.Versions, ", "), Fixed: u.Fixed, Command: u.Command})
	}
	return out
}
