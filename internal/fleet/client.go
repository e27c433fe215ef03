package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/vulndb"
)

// Token prefixes: an enrolment token, made by an admin, makes agents; an
// agent token is one agent's own.
const (
	EnrolTokenPrefix = "reach_enrol_"
	AgentTokenPrefix = "reach_agent_"
)

// Defaults of a Client.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultAttempts    = 6
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	maxRetryAfter      = 60 * time.Second
	maxErrorBody       = 4 << 10
	maxResponseBody    = 1 << 20
	authorizationValue = "Bearer "
)

// ErrTooLarge is a batch that cannot be made small enough for the server:
// one finding alone is over the limit, or the server answered 413.
var ErrTooLarge = errors.New("batch too large")

// Client speaks the agent side of the protocol to one server. Its fields
// may be changed until its first request; it is then safe for concurrent
// use. The token is sent in the Authorization header alone: it is in no
// error and no log.
type Client struct {
	// BaseURL is the server's URL, such as https://reach.example.com:8443.
	BaseURL string
	// Token is the bearer token: an enrolment token for Enrol, the
	// agent's token for the rest.
	Token      string
	HTTPClient *http.Client
	// Timeout bounds each attempt of a request (a configuration request
	// gets its wait on top); 0 means DefaultTimeout.
	Timeout time.Duration
	// Attempts is how many times a request is tried in all before a
	// transient failure is returned; 0 means DefaultAttempts.
	Attempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: it doubles
	// from MinBackoff up to MaxBackoff, with full jitter; 0 means the
	// defaults. A 429's Retry-After, when longer, is waited instead.
	MinBackoff, MaxBackoff time.Duration
	// UserAgent, when set, is sent as the User-Agent header.
	UserAgent string
}

// Option configures NewClient.
type Option func(*options) error

type options struct {
	caFile   string
	timeout  time.Duration
	insecure bool
}

// WithInsecure accepts a plain http:// URL of a server on another host.
// Without it plain http is refused but to a loopback address: anyone on
// the network path could read the token and the report, and change them.
func WithInsecure() Option {
	return func(o *options) error { o.insecure = true; return nil }
}

// WithCAFile trusts the server's certificate only when a CA certificate
// in the PEM file path signed it (a private CA), instead of the system's
// CAs.
func WithCAFile(path string) Option {
	return func(o *options) error { o.caFile = path; return nil }
}

// WithTimeout bounds each attempt of a request (see Client.Timeout).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("timeout %s: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// NewClient returns a client of the server at baseURL, an http or https
// URL, authenticated by token.
func NewClient(baseURL, token string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: give an http:// or https:// URL, such as https://reach.example.com:8443", baseURL)
	}
	if u.Scheme == "http" && !o.insecure && !vulndb.IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("server URL %s: over plain http anyone on the way can read the token and the report, and change them: use https (with -server-ca FILE for a private CA), or pass -insecure to accept it", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL %s: remove the user and password: the token authenticates", u.Redacted())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.caFile != "" {
		pool, err := loadCA(o.caFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{
		BaseURL:    strings.TrimRight(baseURL, "/"),
		Token:      token,
		HTTPClient: &http.Client{Transport: tr},
		Timeout:    o.timeout,
	}, nil
}

// loadCA reads the PEM CA certificates in path.
func loadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("server CA %s: no PEM certificate in it: give the CA certificate that signed the server's (-----BEGIN CERTIFICATE-----)", path)
	}
	return pool, nil
}

// Enrol asks for an agent identity with the client's enrolment token. It
// retries transient failures like Send: a retried enrolment may leave an
// agent that never sends.
func (c *Client) Enrol(ctx context.Context, req EnrolRequest) (EnrolResponse, error) {
	var resp EnrolResponse
	body, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	status, err := c.do(ctx, http.MethodPost, PathEnrol, body, 0, &resp)
	if err != nil {
		return resp, fmt.Errorf("enrol: %w", err)
	}
	if status != http.StatusOK && status != http.StatusCreated || resp.AgentID == "" || resp.Token == "" {
		return resp, fmt.Errorf("enrol: server %s answered %d without an agent ID and token: is it a reach server?", c.BaseURL, status)
	}
	return resp, nil
}

// Send sends one batch, retrying transient failures (network errors,
// 5xx, 429 after its Retry-After) with the same Seq, so that the server
// stores it once. It retries no other 4xx: their *HTTPError carries the
// server's message. A batch whose body is over MaxBatchBytes is not sent
// (ErrTooLarge): Split it first, or use SendAll.
func (c *Client) Send(ctx context.Context, b *Batch) (BatchResponse, error) {
	var resp BatchResponse
	body, err := json.Marshal(b)
	if err != nil {
		return resp, err
	}
	if len(body) > MaxBatchBytes {
		return resp, fmt.Errorf("batch %d: %w: %d bytes, the server takes at most %d: split it", b.Seq, ErrTooLarge, len(body), MaxBatchBytes)
	}
	if _, err := c.do(ctx, http.MethodPost, PathReport, body, 0, &resp); err != nil {
		return resp, fmt.Errorf("send batch %d: %w", b.Seq, err)
	}
	return resp, nil
}

// SendAll splits b (see Split) and sends the parts in order, numbered
// from b.Seq on. It returns the answers to the parts sent, and stops at
// the first part that fails.
func (c *Client) SendAll(ctx context.Context, b *Batch) ([]BatchResponse, error) {
	parts, err := Split(b, MaxBatchBytes)
	if err != nil {
		return nil, err
	}
	var resps []BatchResponse
	for _, p := range parts {
		r, err := c.Send(ctx, p)
		if err != nil {
			return resps, err
		}
		resps = append(resps, r)
	}
	return resps, nil
}

// Config asks for the configuration when it differs from version, waiting
// at most wait (up to MaxWait) for a change. It returns changed false and
// no configuration when none came in time.
func (c *Client) Config(ctx context.Context, version int64, wait time.Duration) (cfg *Config, changed bool, err error) {
	wait = min(max(wait, 0), MaxWait)
	path := fmt.Sprintf("%s?version=%d&wait=%d", PathConfig, version, int(wait/time.Second))
	cfg = new(Config)
	status, err := c.do(ctx, http.MethodGet, path, nil, wait, cfg)
	if err != nil {
		return nil, false, fmt.Errorf("configuration: %w", err)
	}
	if status == http.StatusNotModified {
		return nil, false, nil
	}
	return cfg, true, nil
}

// HTTPError is a server's answer that is not a success, with its message.
type HTTPError struct {
	URL     string // the request's, without query
	Status  int
	Message string // the server's, printable
	// RetryAfter is the server's Retry-After, for a 429 or 503.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("server %s answered %d: %s", e.URL, e.Status, msg)
	switch e.Status {
	case http.StatusUnauthorized:
		s += ": the token is not valid for this server: enrol again (REACH_SERVER_TOKEN: an enrolment token made by the server's admin)"
	case http.StatusForbidden:
		s += ": the token is not allowed to do this (another agent's ID?): use the agent ID that came with the token, or an enrolment token"
	case http.StatusNotFound:
		s += ": is this the URL of a reach server? (check -server)"
	case http.StatusRequestEntityTooLarge:
		s += ": the server takes smaller batches than this reach sends: raise its limit, or upgrade reach"
	case http.StatusBadRequest:
		s += ": the server rejected the request (are reach and the server of versions that speak the same protocol?)"
	case http.StatusTooManyRequests:
		s += ": the server limits how often this agent may send: try again later"
	default:
		if e.Status >= 500 {
			s += ": the server failed: try again later, or see its log"
		}
	}
	return s
}

// transient reports whether the failure may pass: 5xx and 429.
func (e *HTTPError) transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// do makes the request, retrying transient failures, and decodes a 200's
// or 201's body into out. wait is added to the attempt's timeout (a long
// poll). It returns the final status.
func (c *Client) do(ctx context.Context, method, path string, body []byte, wait time.Duration, out any) (int, error) {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			d := c.backoff(attempt)
			var he *HTTPError
			if errors.As(lastErr, &he) && he.RetryAfter > d {
				d = he.RetryAfter
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				return 0, fmt.Errorf("%w (gave up after %d attempts: the next one would come after the deadline)", lastErr, attempt)
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, fmt.Errorf("%w (gave up after %d attempts: %v)", lastErr, attempt, context.Cause(ctx))
			case <-t.C:
			}
		}
		status, err := c.once(ctx, method, path, body, wait, out)
		if err == nil {
			return status, nil
		}
		lastErr = err
		var he *HTTPError
		if errors.As(err, &he) && !he.transient() {
			return status, err
		}
		if ctx.Err() != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempts)
}

// backoff returns the wait before retry number attempt (1 for the first
// retry): a random duration up to MinBackoff doubled attempt-1 times,
// capped at MaxBackoff, and at least half of it.
func (c *Client) backoff(attempt int) time.Duration {
	lo, hi := c.MinBackoff, c.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, method, path string, body []byte, wait time.Duration, out any) (int, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+wait)
	defer cancel()
	u := c.BaseURL + path
	endpoint := u
	if i := strings.IndexByte(endpoint, '?'); i >= 0 {
		endpoint = endpoint[:i]
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("server %s: %w", endpoint, err)
	}
	req.Header.Set("Authorization", authorizationValue+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, networkError(endpoint, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return resp.StatusCode, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody))
		if err := dec.Decode(out); err != nil {
			// A cut answer is as good as none: the request may be retried
			// (a batch keeps its Seq).
			return 0, fmt.Errorf("server %s: reading the answer: %w", endpoint, err)
		}
		return resp.StatusCode, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return resp.StatusCode, &HTTPError{
		URL:        endpoint,
		Status:     resp.StatusCode,
		Message:    serverMessage(msg),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// networkError says what to do about a failure to get an answer.
func networkError(endpoint string, err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var rh tls.RecordHeaderError
	hint := "is the server running and reachable?"
	switch {
	case errors.As(err, &ua):
		hint = "the server's certificate is signed by an unknown CA: give its CA certificate with -server-ca FILE"
	case errors.As(err, &hn):
		hint = "the server's certificate is for another name: use the name it was issued for in the URL"
	case errors.As(err, &rh):
		hint = "the server does not speak TLS: use an http:// URL, or enable TLS on the server"
	case errors.Is(err, context.DeadlineExceeded):
		hint = "no answer in time"
	}
	// url.Error repeats the method and URL: keep its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("server %s: %w: %s", endpoint, err, hint)
}

// serverMessage returns the message of an error body: the "error" of a
// JSON object, else the text, cut short and made printable.
func serverMessage(b []byte) string {
	var v struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	s := string(b)
	if json.Unmarshal(b, &v) == nil {
		if v.Error != "" {
			s = v.Error
		} else if v.Message != "" {
			s = v.Message
		}
	}
	s = strings.TrimSpace(s)
	const max = 300
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return report.Printable(s)
}

// retryAfter parses a Retry-After header (seconds, or an HTTP date), at
// most maxRetryAfter; 0 when absent or invalid.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
