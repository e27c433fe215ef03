//go:build linux || darwin || windows || freebsd

package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/safefile"
	reachserver "github.com/reach-sca/reach/internal/server"
	"github.com/reach-sca/reach/internal/server/dashboard"
	"github.com/reach-sca/reach/internal/server/export"
	"github.com/reach-sca/reach/internal/server/store"
)

const serverDoc = `
Server runs reach server, the fleet's backend: agents (and reach run or
attach with -server) send it what they observe; it keeps the findings of the
whole fleet, deduplicated, serves the agents their configuration (which
targets to watch, the pause switch), keeps triage, and shows a dashboard at
its address. See docs/server.md.

Its data (the SQLite store, the admin token) is in -data. With -store
postgres://USER@HOST/DB several servers share one database behind a load
balancer; give the password in PGPASSWORD or ~/.pgpass, not in the URL, which
other users can read in the process list.

The first start makes an admin token and writes it to DATA/admin-token (mode
0600): log in to the dashboard with it, or send it as "Authorization: Bearer
TOKEN" to the API. Agents enrol with a token from 'reach server enrol-token'.

The server listens on loopback unless told otherwise; beyond loopback it
needs -tls-cert and -tls-key, or -insecure when a proxy in front of it speaks
TLS. It stops on SIGINT or SIGTERM, after the requests in flight.

Subcommands, which open the store directly (the server may be running):

  reach server enrol-token [-name N] [-expires D]   print a new enrolment token
  reach server admin-token [-name N]                print a new admin token`

const serverArgs = "[flags] | enrol-token [flags] | admin-token [flags]"

// storeFlags choose the data directory and the store, for the server and
// its subcommands.
type storeFlags struct {
	data, store string
}

func (sf *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.data, "data", "", "keep the server's data in `DIR`, created mode 0700 (default: $XDG_STATE_HOME/reach-server, else ~/.local/state/reach-server)")
	fs.StringVar(&sf.store, "store", "", "the store, `DSN`: a SQLite file, or a postgres:// URL (default: DIR/reach.db)")
}

// open creates the data directory and opens the store.
func (sf *storeFlags) open(ctx context.Context, opts store.Options) (dir string, st *store.Store, err error) {
	dir = sf.data
	if dir == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", nil, fmt.Errorf("server: no data directory: give -data DIR (%v)", err)
			}
			base = filepath.Join(home, ".local", "state")
		}
		dir = filepath.Join(base, "reach-server")
	}
	if err := safefile.MkdirAll(dir, 0o700); err != nil {
		if errors.Is(err, safefile.ErrUntrusted) {
			return "", nil, fmt.Errorf("server: data directory %s: %w; choose another with -data", dir, err)
		}
		return "", nil, fmt.Errorf("server: data directory: %w", err)
	}
	dsn := sf.store
	if dsn == "" {
		dsn = filepath.Join(dir, "reach.db")
	}
	st, err = store.Open(ctx, dsn, opts)
	if err != nil {
		return "", nil, fmt.Errorf("server: %w", err)
	}
	return dir, st, nil
}

func runServer(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "enrol-token", "admin-token":
			return runServerToken(ctx, e, args[0], args[1:])
		}
	}
	fs := newFlagSet(e, "server", serverArgs, serverDoc)
	var sf storeFlags
	sf.register(fs.FlagSet)
	listen := fs.String("listen", "127.0.0.1:8077", "listen on `ADDR` (HOST:PORT)")
	cert := fs.String("tls-cert", "", "serve HTTPS with the certificate (chain) in `FILE`, PEM")
	key := fs.String("tls-key", "", "the private key of -tls-cert, in `FILE`, PEM")
	insecure := fs.Bool("insecure", false, "allow plain HTTP beyond loopback (only behind a proxy that speaks TLS: tokens travel in every request)")
	otlp := fs.String("otlp", "", "send each newly reached finding as an OTLP log record to the collector at `URL` (OTLP/HTTP, such as http://collector:4318)")
	webhook := fs.String("webhook", "", "POST each newly reached finding as JSON to `URL`")
	verbose := fs.Bool("v", false, "log every request's trouble and the server's work to standard error")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		switch fs.Arg(0) {
		case "enrol-token", "admin-token":
			return usageError("server: put %s first: reach server %s [flags]", fs.Arg(0), fs.Arg(0))
		}
		return usageError("server: unknown subcommand %q: use enrol-token or admin-token, or no argument to run the server", fs.Arg(0))
	}
	if (*cert == "") != (*key == "") {
		return usageError("server: give both -tls-cert and -tls-key, or neither")
	}
	for _, u := range []struct{ flag, value string }{{"otlp", *otlp}, {"webhook", *webhook}} {
		if u.value == "" {
			continue
		}
		p, err := url.Parse(u.value)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return usageError("server: -%s %q: give an http:// or https:// URL", u.flag, u.value)
		}
	}
	tlsOn := *cert != ""
	if err := checkExposure(ctx, *listen, tlsOn, *insecure); err != nil {
		return err
	}
	e.setVerbose(*verbose)

	var tlsConfig *tls.Config
	if tlsOn {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("server: TLS certificate %s and key %s: %w", *cert, *key, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	deliver := &export.Deliverer{OTLPEndpoint: *otlp, WebhookURL: *webhook, Log: e.log.With("component", "delivery")}
	dir, st, err := sf.open(ctx, store.Options{Sinks: deliver.Sinks()})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := firstAdminToken(ctx, e, st, dir); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	srv, err := reachserver.New(ctx, reachserver.Options{
		Store:      st,
		Logger:     e.log.With("component", "server"),
		Mounts:     serverMounts(e, st),
		Background: []func(context.Context){func(ctx context.Context) { deliverer(ctx, e, st, deliver) }},
		OTLP:       *otlp,
		Webhook:    *webhook,
		TLS:        tlsConfig,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("server: %w", err)
	}
	defer srv.Close()
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	fmt.Fprintf(e.stderr, "reach: server listening on %s://%s (store %s); stop with ^C\n", scheme, ln.Addr(), storeName(sf.store, dir))
	if err := srv.Serve(ctx, ln); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	fmt.Fprintf(e.stderr, "reach: server stopped\n")
	return nil
}

// serverMounts returns what the server mounts besides its API: the
// dashboard and the exports, behind the server's login check.
func serverMounts(e *env, st *store.Store) []reachserver.Mount {
	dash := dashboard.New(st, dashboard.Options{
		User:          func(r *http.Request) string { return reachserver.AdminName(r.Context()) },
		Logger:        e.log.With("component", "dashboard"),
		ConfigChanged: reachserver.ConfigChanged,
	})
	return []reachserver.Mount{
		dash.Register,
		func(mux *http.ServeMux, protect func(http.Handler) http.Handler) { export.Register(mux, st, protect) },
	}
}

// deliverer runs the exports' delivery of newly reached findings (OTLP,
// webhook) until ctx ends.
func deliverer(ctx context.Context, e *env, st *store.Store, d *export.Deliverer) {
	if len(d.Sinks()) == 0 {
		return
	}
	d.Store = st
	if err := d.Run(ctx); err != nil {
		e.log.Error("delivery stopped", "err", err)
	}
}

// storeName names the store for messages, without a password.
func storeName(dsn, dir string) string {
	if dsn == "" {
		return filepath.Join(dir, "reach.db")
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return dsn
}

// checkExposure refuses to listen beyond loopback without TLS, unless
// insecure: tokens would cross the network in clear.
func checkExposure(ctx context.Context, addr string, tlsOn, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError("server: -listen %q: give HOST:PORT, such as 127.0.0.1:8077 or 0.0.0.0:8077 (%v)", addr, err)
	}
	if tlsOn || insecure {
		return nil
	}
	loopback := host != ""
	if host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip != nil {
			loopback = ip.IsLoopback()
		} else {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ips, err := net.DefaultResolver.LookupIPAddr(lctx, host)
			cancel()
			loopback = err == nil && len(ips) > 0
			for _, ip := range ips {
				loopback = loopback && ip.IP.IsLoopback()
			}
		}
	}
	if !loopback {
		return usageError("server: -listen %s reaches beyond loopback without TLS: give -tls-cert FILE and -tls-key FILE, or -insecure if a proxy in front of the server speaks TLS, or listen on 127.0.0.1", addr)
	}
	return nil
}

// firstAdminToken makes an admin token and writes it to DIR/admin-token
// when that file does not exist yet (the first start), or when the token
// in it is not one of the store's (the data directory was first used with
// another store, or the token was revoked): whoever can read the file can
// run 'reach server admin-token' anyway.
func firstAdminToken(ctx context.Context, e *env, st *store.Store, dir string) error {
	path := filepath.Join(dir, "admin-token")
	made := "made an admin token and wrote it to %s: log in to the dashboard with it\n"
	f, err := safefile.OpenNoFollow(path)
	switch {
	case err == nil:
		b, err := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if err != nil {
			return fmt.Errorf("server: admin token: %w", err)
		}
		_, err = st.AdminToken(ctx, strings.TrimSpace(string(b)))
		if !errors.Is(err, store.ErrUnauthorized) {
			if err != nil {
				return fmt.Errorf("server: check the admin token in %s: %w", path, err)
			}
			return nil
		}
		made = "the admin token in %s is not one of this store's (another store's, or revoked): made a new one there\n"
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("server: admin token: %w", err)
	}
	token, err := st.CreateAdminToken(ctx, "admin")
	if err != nil {
		return fmt.Errorf("server: make the first admin token: %w", err)
	}
	if err := safefile.ReplaceFile(path, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, token+"\n")
		return err
	}); err != nil {
		return fmt.Errorf("server: write the admin token: %w", err)
	}
	fmt.Fprintf(e.stderr, "reach: "+made, path)
	return nil
}

const enrolTokenDoc = `
Enrol-token prints a new enrolment token: an agent presents it once, to
enrol, and gets a token of its own. Give it to the agents of a fleet (in a
file only they can read); -expires limits how long it enrols.`

const adminTokenDoc = `
Admin-token prints a new admin token: it logs in to the dashboard and
authorizes the admin API ("Authorization: Bearer TOKEN").`

// runServerToken runs "server enrol-token" and "server admin-token".
func runServerToken(ctx context.Context, e *env, sub string, args []string) error {
	doc, argsText := enrolTokenDoc, "[-name N] [-expires D] [flags]"
	if sub == "admin-token" {
		doc, argsText = adminTokenDoc, "[-name N] [flags]"
	}
	fs := newFlagSet(e, "server "+sub, argsText, doc)
	var sf storeFlags
	sf.register(fs.FlagSet)
	name := fs.String("name", strings.TrimSuffix(sub, "-token"), "name the token, for the records (such as the hosts or the person it is for)")
	var expires *time.Duration
	if sub == "enrol-token" {
		expires = fs.Duration("expires", 0, "the token enrols no agent after this long (such as 24h); 0: until revoked")
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("server %s: unexpected argument %q", sub, fs.Arg(0))
	}
	if strings.TrimSpace(*name) == "" {
		return usageError("server %s: -name must not be empty", sub)
	}
	if expires != nil && *expires < 0 {
		return usageError("server %s: -expires %s: must not be negative", sub, *expires)
	}
	_, st, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	var token string
	if sub == "admin-token" {
		token, err = st.CreateAdminToken(ctx, *name)
	} else {
		var until *time.Time
		if *expires > 0 {
			t := time.Now().Add(*expires)
			until = &t
		}
		token, err = st.CreateEnrolToken(ctx, *name, until)
	}
	if err != nil {
		return fmt.Errorf("server %s: %w", sub, err)
	}
	fmt.Fprintln(e.stdout, token)
	return nil
}
