// Package server is reach server's HTTP layer: the agent API (enrolment,
// report batches, the configuration's long poll), the admin API over the
// store's queries, authentication (agent and admin tokens, the
// dashboard's signed session cookie, the login page), the configuration
// hub, and the limits that keep hostile or runaway clients from hurting
// the others (body sizes, per-client rate, concurrent requests). The
// dashboard and the exports are other packages, mounted on the server's
// mux behind its admin authentication (Options.Mounts). See
// docs/server.md.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// Mount adds handlers to the server's mux (the dashboard's pages, the
// exports). protect wraps a handler so that only an administrator reaches
// it, by admin token or session cookie: a browser asking for a page is
// sent to /login, any other client gets 401. AdminName tells a protected
// handler who is asking.
type Mount func(mux *http.ServeMux, protect func(http.Handler) http.Handler)

// Options configure New. Store is required; zero limits take the
// defaults documented on each.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger // nil: discard

	// Mounts add the dashboard and the exports.
	Mounts []Mount
	// Background loops (the exports' delivery) run from New until Close,
	// which cancels their context and waits for them.
	Background []func(ctx context.Context)
	// OTLP and Webhook are the delivery endpoints the command was given,
	// for the exports' delivery loop (wired with Background); the server
	// itself does not use them.
	OTLP, Webhook string

	// TLS, when set, makes Serve speak HTTPS (and session cookies
	// Secure).
	TLS *tls.Config

	// AgentRate is the sustained requests per second each agent (and each
	// address enrolling or logging in) may make, AgentBurst how many it
	// may make at once: 20 and 40 when zero. Beyond, 429 with
	// Retry-After.
	AgentRate  float64
	AgentBurst int
	// MaxConcurrent bounds the requests the server works on at once
	// (long polls waiting for a change are not counted): 256 when zero.
	// A request that finds no room within a second gets 503 with
	// Retry-After.
	MaxConcurrent int
	// ConfigPoll is how often the configuration hub reads the store's
	// configuration version, to learn of changes made through other
	// servers: 250 ms when zero.
	ConfigPoll time.Duration
	// SessionTTL is how long a dashboard login lasts: 12 hours when zero.
	SessionTTL time.Duration
}

// Server is reach server's HTTP handler with its background work (the
// configuration hub). It is safe for concurrent use; Close stops it.
type Server struct {
	store   *store.Store
	log     *slog.Logger
	opts    Options
	hub     *hub
	limiter *limiter
	slots   chan struct{}
	handler http.Handler

	sessionMu     sync.Mutex
	sessionSecret []byte

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a server on opts.Store, with its configuration hub and the
// background loops running until Close.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("server: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AgentRate <= 0 {
		opts.AgentRate = 20
	}
	if opts.AgentBurst <= 0 {
		opts.AgentBurst = 40
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 256
	}
	if opts.ConfigPoll <= 0 {
		opts.ConfigPoll = 250 * time.Millisecond
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	s := &Server{
		store:   opts.Store,
		log:     opts.Logger,
		opts:    opts,
		limiter: newLimiter(opts.AgentRate, opts.AgentBurst),
		slots:   make(chan struct{}, opts.MaxConcurrent),
	}
	h, err := newHub(ctx, opts.Store, opts.ConfigPoll, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.hub = h
	s.handler = s.routes()
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.hub.run(bg) })
	for _, f := range opts.Background {
		s.wg.Go(func() { f(bg) })
	}
	return s, nil
}

// Close stops the configuration hub and the background loops, and ends
// the long polls still waiting (with 304). It does not close the store.
func (s *Server) Close() error {
	s.hub.close()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Timeouts of the http.Server that Serve runs. A response may take as
// long as the longest long poll, and a batch body may be slow to arrive.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = fleet.MaxWait + 30*time.Second
	idleTimeout       = 120 * time.Second
	// shutdownTimeout bounds how long Serve waits for requests in flight
	// once ctx is done.
	shutdownTimeout = 30 * time.Second
)

// Serve serves on ln (with TLS when Options.TLS is set) until ctx is
// done, then shuts down gracefully: it stops accepting, ends the long
// polls (304), waits for the requests in flight (at most 30 s) and
// returns nil. It closes ln. A server serves once: after Serve returns,
// its long polls no longer wait; make a new one to serve again.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if s.opts.TLS != nil {
			srv.TLSConfig = s.opts.TLS.Clone()
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.hub.close() // long polls answer 304 now, instead of holding Shutdown
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	if err != nil {
		srv.Close()
		return fmt.Errorf("shut down the server on %s: %w", ln.Addr(), err)
	}
	return nil
}

// routes builds the mux: the agent API, the admin API, the login pages
// and what Options.Mounts add.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Agent API: tokens of agents only.
	mux.Handle("POST "+fleet.PathEnrol, s.limited(http.HandlerFunc(s.enrol)))
	mux.Handle("POST "+fleet.PathReport, s.limited(s.agentOnly(s.report)))
	mux.HandleFunc("GET "+fleet.PathConfig, s.agentConfig) // takes a slot only to authenticate

	// Admin API: admin tokens or sessions only.
	admin := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.limited(s.protect(h)))
	}
	admin("GET /api/v1/overview", s.overview)
	admin("GET /api/v1/findings", s.findings)
	admin("GET /api/v1/findings/{id}", s.finding)
	admin("GET /api/v1/vulns/{osv}", s.vuln)
	admin("GET /api/v1/services", s.services)
	admin("GET /api/v1/services/{name}", s.service)
	admin("GET /api/v1/agents", s.agents)
	admin("POST /api/v1/triage", s.triage)
	admin("GET /api/v1/config", s.getConfig)
	admin("PUT /api/v1/config", s.putConfig)
	admin("GET /api/v1/config/agents", s.configAgents)
	admin("POST /api/v1/enrol-tokens", s.enrolToken)

	mux.Handle("GET /login", http.HandlerFunc(s.loginPage))
	mux.Handle("POST /login", http.NewCrossOriginProtection().Handler(s.limited(http.HandlerFunc(s.login))))
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /logout", s.logout)

	for _, m := range s.opts.Mounts {
		m(mux, func(h http.Handler) http.Handler { return s.limited(s.protect(h)) })
	}
	return s.accessLog(securityHeaders(mux))
}

// accessLog logs each request at debug level (reach server -v): method,
// path (no query: it may hold what a user searched), status, duration.
func (s *Server) accessLog(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// securityHeaders sets the headers every answer carries: no sniffing, no
// framing (the dashboard's actions must not be clickjacked), no referrer
// leaving the server.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
