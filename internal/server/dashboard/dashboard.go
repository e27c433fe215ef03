// Package dashboard is reach server's web UI: pages rendered on the
// server with html/template from the store's queries, with one CSS file
// and a few lines of JavaScript (table sorting) embedded in the binary.
// It needs no build step and loads nothing from elsewhere.
//
// Everything the pages show comes from agents and is treated as hostile:
// html/template escapes it for its context, and the pages are served
// with a Content-Security-Policy that allows only the dashboard's own
// script and style files.
//
// Filters are query parameters (service, environment, status, triage, q,
// limit, offset), so that a link shows to whoever opens it what its
// sender saw. Forms that change something (triage, configuration) are
// POSTs protected from cross-site requests as csrf.go describes.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Dashboard.
type Options struct {
	// User returns the logged-in user of a request, recorded as who set
	// a triage state or a configuration; nil or "" records "dashboard".
	User func(*http.Request) string
	// Logger receives the errors of requests that fail on the server's
	// side; nil discards them.
	Logger *slog.Logger
	// ConfigChanged, when set, is called with the request's context and
	// the configuration the configuration page saved, so that the server
	// wakes its long-polling agents at once (server.ConfigChanged) rather
	// than at its next poll of the store.
	ConfigChanged func(context.Context, fleet.Config)
}

// Dashboard serves the pages. It is safe for concurrent use.
type Dashboard struct {
	st    *store.Store
	opts  Options
	pages map[string]pageTemplate
	log   *slog.Logger
}

// New returns the dashboard of st.
func New(st *store.Store, opts Options) *Dashboard {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dashboard{st: st, opts: opts, pages: parsePages(), log: log}
}

// Register mounts the dashboard on mux: the pages and form handlers
// wrapped in protect (the login check), the static assets not.
func (d *Dashboard) Register(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, protect(d.handle(fn)))
	}
	h("GET /{$}", d.overview)
	h("GET /vulns/{osv}", d.vuln)
	h("GET /services", d.services)
	h("GET /services/{name}", d.service)
	h("GET /agents", d.agents)
	h("GET /config", d.config)
	// Forms: the standard library's check of the browser's Sec-Fetch-Site
	// and Origin headers first, then the token (csrf.go).
	cross := http.NewCrossOriginProtection()
	post := func(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, protect(cross.Handler(d.handle(fn))))
	}
	post("POST /config", d.setConfig)
	post("POST /triage", d.triage)
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}

// httpError is an error with the status code and message to show.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(msg string) error { return &httpError{http.StatusBadRequest, msg} }

// handle adapts fn: security headers first, and its error as a page.
func (d *Dashboard) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		err := fn(w, r)
		if err == nil {
			return
		}
		code, msg := http.StatusInternalServerError, "internal error: see the server's log"
		var he *httpError
		switch {
		case errors.As(err, &he):
			code, msg = he.code, he.msg
		case errors.Is(err, store.ErrNotFound):
			code, msg = http.StatusNotFound, err.Error()
		case errors.Is(err, store.ErrInvalid):
			code, msg = http.StatusBadRequest, err.Error()
		case errors.Is(err, store.ErrUnavailable):
			code, msg = http.StatusServiceUnavailable, "the database is unavailable; try again in a moment"
			d.log.Error("dashboard", "path", r.URL.Path, "err", err)
		default:
			d.log.Error("dashboard", "path", r.URL.Path, "err", err)
		}
		d.errorPage(w, r, code, msg)
	})
}

// user returns who is logged in.
func (d *Dashboard) user(r *http.Request) string {
	if d.opts.User != nil {
		if u := d.opts.User(r); u != "" {
			return u
		}
	}
	return "dashboard"
}

// maxPage is the most findings or vulnerabilities a page lists.
const maxPage = 1000

// filterOf reads the filter query parameters.
func filterOf(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	f := store.Filter{
		Service:     strings.TrimSpace(q.Get("service")),
		Environment: strings.TrimSpace(q.Get("environment")),
		Status:      report.Status(q.Get("status")),
		Triage:      q.Get("triage"),
		Query:       strings.TrimSpace(q.Get("q")),
	}
	for name, p := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return f, badRequest(name + " must be a number ≥ 0, not " + strconv.Quote(s))
			}
			*p = n
		}
	}
	f.Limit = min(f.Limit, maxPage) // pages stay small
	return f, nil
}

// filterQuery is the query string of f's filters (not its limit and
// offset), for links that keep them.
func filterQuery(f store.Filter) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"service": f.Service, "environment": f.Environment,
		"status": string(f.Status), "triage": f.Triage, "q": f.Query} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// localPath returns p when it is a path on this server, else "/": the
// "return" field of a form must not send the browser elsewhere.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") ||
		strings.HasPrefix(p, "/\\") || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}
