// Package vulndb reads the Go vulnerability database in its v1 layout, as
// https://vuln.go.dev serves it and as govulncheck reads it:
//
//	index/db.json       {"modified": ...}
//	index/modules.json  [{"path", "vulns": [{"id", "modified", "fixed"}]}]
//	index/vulns.json    [{"id", "modified", "aliases"}]
//	ID/<ID>.json        one OSV entry
//
// A source is an http(s) URL (each endpoint is fetched as <endpoint>.json.gz),
// a file:// URL or a directory (each endpoint read as <endpoint>.json, or
// <endpoint>.json.gz when that is what the directory holds).
//
// An HTTP source is cached on disk. The client fetches index/db.json on its
// first query; when its "modified" differs from the cached copy it fetches
// the module and vulnerability indexes again and drops the cached entries
// whose "modified" changed. When the source cannot be reached the cached
// index and entries are used and Warnings says how old they are.
//
// Entries come back as the database states them, withdrawn ones included:
// see Withdrawn. Matchers must ignore withdrawn entries.
package vulndb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/safefile"
)

// DefaultURL is the official Go vulnerability database.
const DefaultURL = "https://vuln.go.dev"

// EnvDB is the environment variable that overrides DefaultURL, as it does
// for govulncheck.
const EnvDB = "GOVULNDB"

// Defaults of Options. The size limits keep a wide margin over the real
// database (vuln.go.dev, 2026): its largest entry is 8 KB, its largest
// index 0.5 MB, its 1,373 modules list at most 293 entries each and 4,291
// entries in all.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultLoadTimeout    = 2 * time.Minute
	DefaultMaxConcurrency = 8
	DefaultMaxIndexBytes  = 16 << 20
	DefaultMaxEntryBytes  = 1 << 20
)

// Limits on what an index may list; an index over them is malformed.
const (
	// MaxModuleEntries bounds the entries index/modules.json lists for one
	// module: each is a request and a cache file when the module is asked
	// about.
	MaxModuleEntries = 1000
	// MaxEntries bounds the distinct entries of each index.
	MaxEntries = 50000
	// MaxQueryEntries bounds the entries one query reads: the 40 modules
	// with the most entries have 2,435 together.
	MaxQueryEntries = 5000
	// MaxQueryBytes bounds the bytes of the entries one query fetches
	// from the source, and so what it adds to the cache (the 4,291
	// entries of the real database take 6 MB).
	MaxQueryBytes = 64 << 20
)

var (
	// ErrNotFound: the database has no such entry or endpoint.
	ErrNotFound = errors.New("not found")
	// ErrMalformed: an index or an entry is not what the v1 layout says.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: a response or file exceeds Options.MaxIndexBytes or
	// Options.MaxEntryBytes, an index lists more than MaxEntries or
	// MaxModuleEntries, or a query needs more than MaxQueryEntries or
	// MaxQueryBytes.
	ErrTooLarge = errors.New("too large")
	// ErrInvalidID: an entry ID is not safe to use as a file or URL name
	// (see ValidID).
	ErrInvalidID = errors.New("invalid entry ID")
	// ErrTimeout: a request did not complete within Options.RequestTimeout,
	// or a query within Options.LoadTimeout.
	ErrTimeout = errors.New("timed out")
)

// DefaultSource returns the database the CLI reads when the user names
// none: $GOVULNDB when set, DefaultURL otherwise.
func DefaultSource() string {
	if s := strings.TrimSpace(os.Getenv(EnvDB)); s != "" {
		return s
	}
	return DefaultURL
}

// Options configure a Client. The zero value is ready to use.
type Options struct {
	// CacheDir holds the cache of an HTTP source. The default is
	// os.UserCacheDir()/reach/vulndb/<source made safe as a name>. Local
	// sources are never cached.
	CacheDir string
	// DisableCache turns the cache of an HTTP source off.
	DisableCache bool
	// Logger receives debug logs and warnings; nil discards them.
	Logger *slog.Logger
	// HTTPClient makes the requests of an HTTP source; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// RequestTimeout bounds each request, reading its body included
	// (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// LoadTimeout bounds each query as a whole: reading the index and
	// every entry it needs (default DefaultLoadTimeout). A server that
	// answers each request slowly but in time is stopped here.
	LoadTimeout time.Duration
	// MaxConcurrency bounds the entries fetched at once (default
	// DefaultMaxConcurrency).
	MaxConcurrency int
	// MaxIndexBytes bounds each index response and file, and MaxEntryBytes
	// each entry, both before and after decompression (defaults
	// DefaultMaxIndexBytes and DefaultMaxEntryBytes).
	MaxIndexBytes, MaxEntryBytes int64
	// Insecure accepts a plain http:// source on another host than this
	// one. Without it only https:// and http:// to a loopback address are
	// accepted: anyone on the network path could read and change plain
	// http. Redirects are followed only to the same scheme and host, so
	// never from https to http.
	Insecure bool
}

// Info describes the database a Client reads.
type Info struct {
	// Source is the database as given to New, made absolute for a
	// directory.
	Source string
	// Modified is the database's index/db.json "modified".
	Modified time.Time
	// Entries and Modules count index/vulns.json and index/modules.json.
	Entries, Modules int
	// CachePath is the cache directory of an HTTP source, "" otherwise.
	CachePath string
	// CacheAge is how long ago the cached index was last confirmed with
	// the source: about zero after a successful check, 0 for local sources.
	CacheAge time.Duration
	// Offline is true when the source could not be reached and the
	// cached copy is in use (Warnings says why).
	Offline bool
}

// Client reads one vulnerability database. It loads the index once, on the
// first query, and keeps every entry it has read in memory. Entries it
// returns are shared: callers must not modify them.
//
// A Client is safe for concurrent use.
type Client struct {
	source   string
	src      source
	cache    *cache // nil for local sources and when disabled
	log      *slog.Logger
	maxConc  int
	limits   limits
	timeout  time.Duration // of a whole query: Options.LoadTimeout
	maxQuery int64         // MaxQueryBytes; tests lower it
	now      func() time.Time

	loadMu sync.Mutex // serializes index loading

	mu        sync.Mutex // guards the fields below
	idx       *index
	offline   bool
	checked   time.Time
	entries   map[string]*osv.Entry
	warnings  []string
	cacheWarn bool
}

// New returns a client of the database at source: an http(s) URL, a file://
// URL or a directory. It checks that a local directory exists, but reads
// nothing from the database until the first query.
func New(source string, opts Options) (*Client, error) {
	c := &Client{
		log:      opts.Logger,
		maxConc:  opts.MaxConcurrency,
		limits:   limits{index: opts.MaxIndexBytes, entry: opts.MaxEntryBytes},
		timeout:  opts.LoadTimeout,
		now:      time.Now,
		maxQuery: MaxQueryBytes,
		entries:  make(map[string]*osv.Entry),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "vulndb")
	if c.maxConc <= 0 {
		c.maxConc = DefaultMaxConcurrency
	}
	if c.limits.index <= 0 {
		c.limits.index = DefaultMaxIndexBytes
	}
	if c.limits.entry <= 0 {
		c.limits.entry = DefaultMaxEntryBytes
	}
	if c.timeout <= 0 {
		c.timeout = DefaultLoadTimeout
	}
	timeout := opts.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}

	source = strings.TrimSpace(source)
	if source == "" {
		return nil, errors.New("vulnerability database source is empty: give a URL (https://vuln.go.dev) or a directory")
	}
	u, err := url.Parse(source)
	isURL := err == nil && u.Scheme != "" && len(u.Scheme) > 1 // "C:" is a drive, not a scheme
	switch {
	case isURL && (u.Scheme == "http" || u.Scheme == "https"):
		if u.Host == "" {
			return nil, fmt.Errorf("vulnerability database URL %s has no host", source)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("vulnerability database URL %s: remove the query or fragment", source)
		}
		if u.Scheme == "http" && !opts.Insecure && !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("vulnerability database URL %s: plain http can be read and changed by anyone on the way; use https, or pass -insecure to accept it", source)
		}
		c.source = strings.TrimRight(source, "/")
		c.src = &httpSource{base: c.source, client: sameOrigin(opts.HTTPClient), timeout: timeout, limits: c.limits}
		if !opts.DisableCache {
			dir := opts.CacheDir
			if dir == "" {
				base, err := os.UserCacheDir()
				if err != nil {
					c.log.Debug("no user cache directory: not caching", "err", err)
				} else {
					dir = filepath.Join(base, "reach", "vulndb", sanitizeSource(c.source))
				}
			}
			if dir != "" {
				// A cache another user can change could lie about the
				// database, or hold links that make reach replace files
				// elsewhere: not used.
				if err := safefile.MkdirAll(dir, 0o755); err != nil {
					msg := fmt.Sprintf("cannot use the database cache in %s (results are not affected): %v", dir, err)
					if errors.Is(err, safefile.ErrUntrusted) {
						msg += "; set XDG_CACHE_HOME to a directory only you can write"
					}
					c.warn(msg)
				} else {
					c.cache = &cache{dir: dir, limits: c.limits}
				}
			}
		}
		return c, nil
	case isURL && u.Scheme == "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("vulnerability database URL %s: a file URL must name a local path (file:///path)", source)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("vulnerability database URL %s has no path", source)
		}
		return c.newDir(u.Path)
	case isURL && strings.Contains(source, "://"):
		return nil, fmt.Errorf("vulnerability database %s: unsupported scheme %q; use https://, file:// or a directory", source, u.Scheme)
	}
	return c.newDir(source)
}

func (c *Client) newDir(dir string) (*Client, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("vulnerability database %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("vulnerability database %s: %w; give a directory holding the v1 layout or a URL", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("vulnerability database %s is not a directory; give a directory holding the v1 layout or a URL", dir)
	}
	c.source = abs
	c.src = &dirSource{dir: abs, limits: c.limits}
	return c, nil
}

// Source returns the database the client reads, as Info.Source.
func (c *Client) Source() string { return c.source }

// Warnings returns what the client had to work around so far, such as a
// stale cache in use or a malformed entry skipped. A report should show
// them.
func (c *Client) Warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.warnings...)
}

func (c *Client) warn(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.warnings {
		if w == msg {
			return
		}
	}
	c.warnings = append(c.warnings, msg)
	c.log.Warn(msg, "source", c.source)
}

// deadline bounds a query by Options.LoadTimeout. When it passes, the
// context's cause, which the sources return, says so.
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.timeout, fmt.Errorf(
		"%w: reading %s took longer than the %v allowed (-db-timeout); raise -db-timeout if the server is slow but sound",
		ErrTimeout, c.source, c.timeout))
}

// Info loads the index when needed and describes the database.
func (c *Client) Info(ctx context.Context) (Info, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	idx, err := c.index(ctx, true)
	if err != nil {
		return Info{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	info := Info{
		Source:   c.source,
		Modified: idx.db.Modified,
		Entries:  len(idx.vulns),
		Modules:  len(idx.modules),
		Offline:  c.offline,
	}
	if c.cache != nil {
		info.CachePath = c.cache.dir
		if !c.checked.IsZero() {
			info.CacheAge = c.now().Sub(c.checked)
		}
	}
	return info, nil
}

// Modified returns when the database was last modified, from its index.
// For a local database it reads less than Info: not index/vulns.json.
func (c *Client) Modified(ctx context.Context) (time.Time, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	idx, err := c.index(ctx, false)
	if err != nil {
		return time.Time{}, err
	}
	return idx.db.Modified, nil
}
