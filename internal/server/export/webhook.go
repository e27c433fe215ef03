package export

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// The webhook's headers.
const (
	// SignatureHeader carries "sha256=HEX": the HMAC-SHA256 of the request
	// body with the webhook secret, as GitHub's webhooks do. A receiver
	// computes it over the body bytes it received and compares in
	// constant time (VerifySignature).
	SignatureHeader = "X-Reach-Signature-256"
	// DeliveryHeader carries the delivery's ID: the same when a delivery
	// is retried, so that a receiver can drop a repeat (delivery is at
	// least once).
	DeliveryHeader = "X-Reach-Delivery"
	// EventHeader carries EventName.
	EventHeader = "X-Reach-Event"
)

// WebhookPayload is the JSON body POSTed to the webhook for a newly
// reached finding.
type WebhookPayload struct {
	Event    string         `json:"event"`    // EventName
	Delivery int64          `json:"delivery"` // as DeliveryHeader
	Sent     time.Time      `json:"sent"`
	Message  string         `json:"message"` // a sentence for people (Sentence)
	Finding  WebhookFinding `json:"finding"`
	// Seen is where the finding was seen first.
	Seen *WebhookSighting `json:"seen,omitempty"`
}

// WebhookFinding is a finding in a webhook payload.
type WebhookFinding struct {
	ID             int64            `json:"id"`
	Service        string           `json:"service"`
	BuildID        string           `json:"build_id"`
	Binary         string           `json:"binary"`
	OSV            string           `json:"osv"`
	Aliases        []string         `json:"aliases,omitempty"`
	Summary        string           `json:"summary,omitempty"`
	URL            string           `json:"url"` // the OSV entry's page
	Module         string           `json:"module"`
	Version        string           `json:"version"`
	FixedVersion   string           `json:"fixed_version,omitempty"`
	Fix            string           `json:"fix,omitempty"` // the upgrade command; "" when no version fixes it
	Package        string           `json:"package"`
	Symbol         string           `json:"symbol,omitempty"`
	Status         report.Status    `json:"status"`
	Callsite       *report.Callsite `json:"callsite,omitempty"`
	Stack          []report.Frame   `json:"stack,omitempty"`
	Hits           uint64           `json:"hits"`
	HitsLowerBound bool             `json:"hits_lower_bound,omitempty"`
	FirstSeen      time.Time        `json:"first_seen"`
	LastSeen       time.Time        `json:"last_seen"`
	FirstReached   *time.Time       `json:"first_reached,omitempty"`
	Hosts          []string         `json:"hosts,omitempty"`
	Environments   []string         `json:"environments,omitempty"`
	Triage         *store.Triage    `json:"triage,omitempty"`
}

// WebhookSighting is where a finding was seen, in a webhook payload.
type WebhookSighting struct {
	Host        string            `json:"host"`
	Environment string            `json:"environment,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	PIDs        []int             `json:"pids,omitempty"`
	AgentID     string            `json:"agent_id,omitempty"`
}

// EncodeWebhook returns the webhook body of event e, delivery id, sent at
// sent.
func EncodeWebhook(e *Event, id int64, sent time.Time) ([]byte, error) {
	f := &e.Finding
	p := WebhookPayload{
		Event:    EventName,
		Delivery: id,
		Sent:     sent.UTC(),
		Message:  Sentence(f, e.Sighting.Host),
		Finding: WebhookFinding{
			ID: f.ID, Service: f.Service, BuildID: f.BuildID, Binary: f.BinaryPath,
			OSV: f.OSV, Aliases: f.Aliases, Summary: f.Summary, URL: (&report.Finding{OSV: f.OSV}).URL(),
			Module: f.Module, Version: f.Version, FixedVersion: f.FixedVersion, Fix: upgradeCommand(f),
			Package: f.Package, Symbol: f.Symbol, Status: f.Status, Callsite: f.Callsite, Stack: f.Stack,
			Hits: f.Hits, HitsLowerBound: f.HitsLowerBound,
			FirstSeen: f.FirstSeen.UTC(), LastSeen: f.LastSeen.UTC(), FirstReached: f.FirstReached,
			Hosts: f.Hosts, Environments: f.Environments,
		},
	}
	if f.Triage.State != "" {
		t := f.Triage
		p.Finding.Triage = &t
	}
	if sg := &e.Sighting; sg.Host != "" || sg.Instance != "" {
		p.Seen = &WebhookSighting{Host: sg.Host, Environment: sg.Environment, Labels: sg.Labels, PIDs: sg.PIDs, AgentID: sg.AgentID}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode webhook payload of finding %d: %w", f.ID, err)
	}
	return b, nil
}

// Sign is the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is body's signature under
// secret, comparing in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(mac, m.Sum(nil))
}
