package vulndb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	neturl "net/url"
	"time"
)

// httpSource reads a database from an http(s) server in the v1 layout, as
// govulncheck does: GET <base>/<endpoint>.json.gz and decompress.
type httpSource struct {
	base    string // without trailing slash
	client  *http.Client
	timeout time.Duration // per request, body included
	limits  limits        // per response, compressed and decompressed
}

// sameOrigin returns a copy of hc (nil: http.DefaultClient) that follows
// redirects only to the scheme and host of the first request: never from
// https to http, never to a host the user did not name.
func sameOrigin(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
			return fmt.Errorf("redirect to %s refused: reach follows redirects only within %s://%s; give the database's final URL with -db", req.URL.Redacted(), first.Scheme, first.Host)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// IsLoopback reports whether host names this machine: localhost or a
// loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (s *httpSource) where(endpoint string) string {
	return s.base + "/" + endpoint + ".json.gz"
}

func (s *httpSource) get(ctx context.Context, endpoint string) (_ []byte, err error) {
	url := s.where(endpoint)
	max := s.limits.of(endpoint)
	defer func() {
		if err != nil {
			// The client's *url.Error would say the URL a second time.
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			err = fmt.Errorf("GET %s: %w", url, err)
		}
	}()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.ctxErr(parent, ctx, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w (HTTP %s)", ErrNotFound, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("server answered HTTP %s", resp.Status)
	case resp.ContentLength > max:
		return nil, fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, resp.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", s.ctxErr(parent, ctx, err))
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%w: response is more than %d bytes", ErrTooLarge, max)
	}
	if !bytes.HasPrefix(body, gzipMagic) {
		// A server (or proxy) that set Content-Encoding: gzip has had the
		// body decompressed by the transport already: accept plain JSON.
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
			return body, nil
		}
		return nil, fmt.Errorf("response is neither gzip nor JSON (Content-Type %q): %s may not serve a Go vulnerability database",
			resp.Header.Get("Content-Type"), s.base)
	}
	return gunzip(body, max)
}

// ctxErr explains a failure caused by the per-request deadline, and
// reports the caller's own cancellation as such.
func (s *httpSource) ctxErr(parent, ctx context.Context, err error) error {
	if parent.Err() != nil {
		return context.Cause(parent) // the caller's cancellation or the query's deadline
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: no complete answer within %v", ErrTimeout, s.timeout)
	}
	return err
}
