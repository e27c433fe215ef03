package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/server/store"
)

// The sinks' names, as store.Options.Sinks takes them.
const (
	SinkOTLP    = "otlp"
	SinkWebhook = "webhook"
)

// WebhookSecretName is the store secret (store.Secret) that signs webhook
// bodies when Deliverer.WebhookSecret is not set.
const WebhookSecretName = "webhook"

// WebhookSecret is the server's webhook secret: the store's secret
// WebhookSecretName in hex, made at random the first time and the same
// for every server on the database. Admins read it at
// GET /api/v1/export/webhook-secret.
func WebhookSecret(ctx context.Context, st interface {
	Secret(ctx context.Context, name string) ([]byte, error)
}) (string, error) {
	b, err := st.Secret(ctx, WebhookSecretName)
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Queue is the part of the store the Deliverer uses (*store.Store).
type Queue interface {
	PendingDeliveries(ctx context.Context, sink string, n int) ([]store.Delivery, error)
	MarkDelivered(ctx context.Context, id int64, deliveryErr error) error
	Sightings(ctx context.Context, findingID int64) ([]store.Sighting, error)
	Secret(ctx context.Context, name string) ([]byte, error)
}

var _ Queue = (*store.Store)(nil)

// Deliverer sends newly reached findings to an OTLP collector (as logs)
// and to a webhook, at least once: it polls the store's queue of each
// configured sink, delivers, and records each attempt with
// MarkDelivered. A failed delivery stays queued, its error recorded and
// logged, and is tried again after a backoff that doubles with each
// attempt (MinBackoff to MaxBackoff); nothing is dropped. Several
// Deliverers on one database may deliver a finding twice; receivers drop
// repeats by delivery ID (webhook) or tolerate them (logs).
type Deliverer struct {
	Store Queue
	// OTLPEndpoint is the base URL of an OTLP/HTTP collector, such as
	// "http://localhost:4318": logs are POSTed to OTLPEndpoint/v1/logs (a
	// URL already ending in /v1/logs is taken as it is). "" sends none.
	OTLPEndpoint string
	// OTLPHeaders are added to every OTLP request (an API key, for
	// example).
	OTLPHeaders map[string]string
	// WebhookURL receives a signed POST per newly reached finding; ""
	// sends none.
	WebhookURL string
	// WebhookSecret signs webhook bodies (SignatureHeader: the HMAC key is
	// the secret's bytes, as GitHub's webhooks do); "": the server's own
	// (the package's WebhookSecret).
	WebhookSecret string
	// Client sends the requests; nil: http.DefaultTransport.
	Client *http.Client
	// Timeout bounds each request; 0: 10 s.
	Timeout time.Duration
	// Poll is how often the queue is read when it is empty; 0: 1 s.
	Poll time.Duration
	// Batch is the number of deliveries read at once (and sent in one
	// OTLP request); 0: 100.
	Batch int
	// MinBackoff and MaxBackoff bound the wait before a failed delivery is
	// tried again; 0: 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// Log receives delivery failures; nil: slog.Default().
	Log *slog.Logger
}

// Sinks lists the sinks d delivers to, for store.Options.Sinks.
func (d *Deliverer) Sinks() []string {
	var sinks []string
	if d.OTLPEndpoint != "" {
		sinks = append(sinks, SinkOTLP)
	}
	if d.WebhookURL != "" {
		sinks = append(sinks, SinkWebhook)
	}
	return sinks
}

// Run delivers until ctx is done, then returns nil. It fails at once only
// on a configuration that cannot work (a URL that does not parse).
func (d *Deliverer) Run(ctx context.Context) error {
	var sinks []func(context.Context, []store.Delivery) []error
	var names []string
	if d.OTLPEndpoint != "" {
		u, err := otlpLogsURL(d.OTLPEndpoint)
		if err != nil {
			return err
		}
		names = append(names, SinkOTLP)
		sinks = append(sinks, func(ctx context.Context, ds []store.Delivery) []error { return d.sendOTLP(ctx, u, ds) })
	}
	if d.WebhookURL != "" {
		if err := checkURL("webhook", d.WebhookURL); err != nil {
			return err
		}
		names = append(names, SinkWebhook)
		sinks = append(sinks, d.sendWebhooks)
	}
	var wg sync.WaitGroup
	for i := range sinks {
		wg.Go(func() { d.loop(ctx, names[i], sinks[i]) })
	}
	wg.Wait()
	return nil
}

func (d *Deliverer) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// backoff is the wait before attempt n+1 of a delivery that failed n
// times (n >= 1).
func (d *Deliverer) backoff(n int) time.Duration {
	b := orDefault(d.MinBackoff, time.Second)
	hi := orDefault(d.MaxBackoff, 5*time.Minute)
	for i := 1; i < n && b < hi; i++ {
		b *= 2
	}
	return min(b, hi)
}

// loop delivers sink's queue until ctx is done.
func (d *Deliverer) loop(ctx context.Context, sink string, send func(context.Context, []store.Delivery) []error) {
	poll := orDefault(d.Poll, time.Second)
	batch := orDefault(d.Batch, 100)
	retryAt := map[int64]time.Time{} // failed deliveries, when to try them again
	for ctx.Err() == nil {
		wait := poll
		pending, err := d.Store.PendingDeliveries(ctx, sink, batch)
		if err != nil {
			if ctx.Err() == nil {
				d.log().Warn("reading the delivery queue", "sink", sink, "err", err)
			}
		}
		now := time.Now()
		var due []store.Delivery
		for _, p := range pending {
			if at, ok := retryAt[p.ID]; ok && now.Before(at) {
				wait = min(wait, at.Sub(now))
				continue
			}
			due = append(due, p)
		}
		if len(due) > 0 {
			errs := send(ctx, due)
			failed := map[string][]int64{} // error: the deliveries it failed, logged once a round
			var order []string
			for i, p := range due {
				if ctx.Err() != nil {
					return // not recorded: the next start delivers it again
				}
				if errs[i] != nil {
					next := d.retryIn(p.Attempts+1, errs[i])
					retryAt[p.ID] = time.Now().Add(next)
					wait = min(wait, next)
					msg := fmt.Sprintf("%v (attempt %d, again in %v)", errs[i], p.Attempts+1, next)
					if failed[msg] == nil {
						order = append(order, msg)
					}
					failed[msg] = append(failed[msg], p.ID)
				} else {
					delete(retryAt, p.ID)
				}
				if err := d.Store.MarkDelivered(ctx, p.ID, errs[i]); err != nil && ctx.Err() == nil {
					d.log().Warn("recording a delivery attempt", "sink", sink, "delivery", p.ID, "err", err)
				}
			}
			for _, msg := range order {
				ids := failed[msg]
				d.log().Warn("delivery failed; it stays queued", "sink", sink, "deliveries", len(ids), "first", ids[0], "err", msg)
			}
			if len(pending) == batch && len(due) == len(pending) {
				wait = 0 // more may be queued
			}
		}
		if len(retryAt) > 4*batch {
			// Forget the oldest waits of deliveries no longer pending
			// (delivered by another server).
			for id, at := range retryAt {
				if now.After(at) {
					delete(retryAt, id)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// events are the deliveries with where their findings were seen first.
func (d *Deliverer) events(ctx context.Context, ds []store.Delivery) []Event {
	events := make([]Event, len(ds))
	for i, p := range ds {
		events[i] = Event{Finding: p.Finding, Queued: p.Created}
		sgs, err := d.Store.Sightings(ctx, p.Finding.ID)
		if err != nil {
			// Still deliverable: the finding has its hosts and environments.
			d.log().Warn("reading where a finding was seen", "finding", p.Finding.ID, "err", err)
			continue
		}
		if len(sgs) > 0 {
			events[i].Sighting = sgs[0]
		}
	}
	return events
}

func (d *Deliverer) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return &http.Client{}
}

// post POSTs body to u, and returns the response body of a 2xx answer.
func (d *Deliverer) post(ctx context.Context, what, u string, body []byte, header http.Header) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(d.Timeout, 10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, redactURL(u), err)
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reach-server")
	resp, err := d.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a key
		}
		return nil, fmt.Errorf("%s %s: %w", what, redactURL(u), err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(answer))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		err := &statusError{status: resp.Status, msg: msg}
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			err.retryAfter = time.Duration(secs) * time.Second
		}
		return nil, fmt.Errorf("%s %s: %w", what, redactURL(u), err)
	}
	return answer, nil
}

// statusError is an answer other than 2xx.
type statusError struct {
	status     string
	msg        string
	retryAfter time.Duration // the answer's Retry-After, if any
}

func (e *statusError) Error() string { return fmt.Sprintf("%s: %q", e.status, e.msg) }

// retryIn is the wait before trying a delivery again after err, its
// attempt-th failure: the backoff, or longer when the receiver asked
// (Retry-After), within MaxBackoff.
func (d *Deliverer) retryIn(attempt int, err error) time.Duration {
	next := d.backoff(attempt)
	var se *statusError
	if errors.As(err, &se) && se.retryAfter > next {
		next = min(se.retryAfter, orDefault(d.MaxBackoff, 5*time.Minute))
	}
	return next
}

// sendOTLP sends the deliveries as one OTLP logs request.
func (d *Deliverer) sendOTLP(ctx context.Context, u string, ds []store.Delivery) []error {
	errs := make([]error, len(ds))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	body, err := EncodeOTLP(d.events(ctx, ds))
	if err != nil {
		return fail(err)
	}
	h := http.Header{}
	for k, v := range d.OTLPHeaders {
		h.Set(k, v)
	}
	answer, err := d.post(ctx, "otlp logs", u, body, h)
	if err != nil {
		return fail(err)
	}
	// A collector may reject some records for good (partial success):
	// OTLP says not to send them again, so they count as delivered, and
	// the rejection is logged.
	var ps struct {
		PartialSuccess struct {
			RejectedLogRecords json.Number `json:"rejectedLogRecords"`
			ErrorMessage       string      `json:"errorMessage"`
		} `json:"partialSuccess"`
	}
	if json.Unmarshal(answer, &ps) == nil {
		if n, _ := ps.PartialSuccess.RejectedLogRecords.Int64(); n > 0 || ps.PartialSuccess.ErrorMessage != "" {
			d.log().Warn("the OTLP collector rejected log records", "rejected", n, "of", len(ds), "message", ps.PartialSuccess.ErrorMessage)
		}
	}
	return errs
}

// sendWebhooks POSTs each delivery to the webhook, signed.
func (d *Deliverer) sendWebhooks(ctx context.Context, ds []store.Delivery) []error {
	errs := make([]error, len(ds))
	secret := d.WebhookSecret
	if secret == "" {
		var err error
		if secret, err = WebhookSecret(ctx, d.Store); err != nil {
			for i := range errs {
				errs[i] = err
			}
			return errs
		}
	}
	events := d.events(ctx, ds)
	for i := range ds {
		body, err := EncodeWebhook(&events[i], ds[i].ID, time.Now())
		if err != nil {
			errs[i] = err
			continue
		}
		h := http.Header{}
		h.Set(SignatureHeader, Sign([]byte(secret), body))
		h.Set(DeliveryHeader, strconv.FormatInt(ds[i].ID, 10))
		h.Set(EventHeader, EventName)
		_, errs[i] = d.post(ctx, "webhook", d.WebhookURL, body, h)
	}
	return errs
}

// otlpLogsURL is the logs URL of an OTLP/HTTP endpoint.
func otlpLogsURL(endpoint string) (string, error) {
	if err := checkURL("OTLP endpoint", endpoint); err != nil {
		return "", err
	}
	if strings.HasSuffix(endpoint, "/v1/logs") {
		return endpoint, nil
	}
	return strings.TrimSuffix(endpoint, "/") + "/v1/logs", nil
}

// checkURL checks that u is an http or https URL.
func checkURL(what, u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%s %q: not an http:// or https:// URL", what, redactURL(u))
	}
	return nil
}

// redactURL removes a password and the query (which may hold a key) from
// u for messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	p.RawQuery = ""
	p.Fragment = ""
	return p.String()
}
