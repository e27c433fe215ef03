package export

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
	"github.com/reach-sca/reach/internal/testprog"
)

// stores are the real stores the end-to-end tests run on: SQLite, and
// PostgreSQL (testprog.Postgres: skipped without REACH_TEST_POSTGRES,
// except under CI=true).
var stores = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "reach.db") }},
	{"postgres", func(t *testing.T) string { return testprog.Postgres(t) }},
}

var e2eStart = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// e2eBatch is agent's batch seq: service checkout in prod on host web-1,
// in a Kubernetes pod, running a binary with GO-2021-0113 reached from
// one callsite (hits times) and GO-2022-0969 linked.
func e2eBatch(agent string, seq uint64, hits uint64) *fleet.Batch {
	first := e2eStart.Add(time.Minute)
	return &fleet.Batch{
		AgentID: agent, Seq: seq, Sent: e2eStart.Add(time.Duration(seq) * time.Minute),
		Agent: fleet.AgentState{Hostname: "web-1", ReachVersion: "v0.test", Processes: 1, Probes: 2},
		Observations: []fleet.Observation{{
			Instance: "web-1/4242/1", Host: "web-1", Service: "checkout", Environment: "prod", Mode: "agent",
			Labels:  map[string]string{"container.id": "c0ffee", "k8s.pod.name": "checkout-7d9", "k8s.namespace.name": "shop"},
			PIDs:    []int{4242},
			Started: e2eStart,
			Binary: &report.Binary{
				Path: "/app/checkout", BuildID: "bid/checkout", GoVersion: "go1.26.8",
				MainModule: "example.com/checkout", MainVersion: "v1.0.0",
				Modules: []report.Module{{Path: "golang.org/x/text", Version: "v0.3.5"}},
				Findings: []*report.Finding{
					{
						OSV: "GO-2021-0113", Aliases: []string{"CVE-2020-28851"}, Summary: "Out-of-bounds read in golang.org/x/text/language",
						Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.7", Status: report.Reached,
						Symbols: []*report.Symbol{{
							Package: "golang.org/x/text/language", Name: "Parse", Status: report.Reached, Hits: hits,
							FirstSeen: &first, LastSeen: &first,
							Callsites: []*report.Callsite{{Function: "main.handle", File: "example.com/checkout/main.go", Line: 22, Hits: hits}},
							Stack: []report.Frame{
								{Function: "golang.org/x/text/language.Parse", File: "/go/pkg/mod/golang.org/x/text@v0.3.5/language/parse.go", Line: 33},
								{Function: "main.handle", File: "example.com/checkout/main.go", Line: 22},
							},
						}},
					},
					{
						OSV: "GO-2022-0969", Summary: "Denial of service in net/http", Module: "stdlib", Version: "v1.26.8", FixedVersion: "v1.26.9",
						Status:  report.Linked,
						Symbols: []*report.Symbol{{Package: "net/http", Name: "ServeConn", Status: report.Linked}},
					},
				},
			},
		}},
	}
}

// TestEndToEnd: a batch with a reached finding ingested into a real store
// reaches a collector that fails three times first as exactly one valid
// OTLP log record with the observation's attributes, and a webhook as one
// signed POST; a repeat of the batch or more hits deliver nothing more;
// the service's exports state it.
func TestEndToEnd(t *testing.T) {
	for _, sd := range stores {
		t.Run(sd.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, sd.dsn(t), store.Options{Sinks: []string{SinkOTLP, SinkWebhook}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tok, err := st.CreateEnrolToken(ctx, "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			agent, err := st.Enrol(ctx, tok, fleet.EnrolRequest{Hostname: "web-1", ReachVersion: "v0.test"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := st.Ingest(ctx, agent.AgentID, e2eBatch(agent.AgentID, 1, 3))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Reached) != 1 {
				t.Fatalf("ingest: %d findings became reached, want 1", len(res.Reached))
			}

			c := &collector{t: t}
			c.fail.Store(3)
			otlp := httptest.NewServer(c)
			defer otlp.Close()
			secret, err := WebhookSecret(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var hooks []WebhookPayload
			var hookReqs atomic.Int32
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hookReqs.Add(1)
				body, _ := io.ReadAll(r.Body)
				if !VerifySignature([]byte(secret), body, r.Header.Get(SignatureHeader)) {
					t.Errorf("webhook signature %q does not verify with the server's secret", r.Header.Get(SignatureHeader))
				}
				var p WebhookPayload
				if err := json.Unmarshal(body, &p); err != nil {
					t.Errorf("webhook body: %v", err)
				}
				mu.Lock()
				hooks = append(hooks, p)
				mu.Unlock()
			}))
			defer hook.Close()

			d := &Deliverer{
				Store: st, OTLPEndpoint: otlp.URL, OTLPHeaders: map[string]string{"Authorization": "Bearer collector-key"},
				WebhookURL: hook.URL, Poll: 10 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- d.Run(runCtx) }()
			stop := func() {
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "both sinks delivered", func() bool {
				for _, sink := range []string{SinkOTLP, SinkWebhook} {
					if p, err := st.PendingDeliveries(ctx, sink, 10); err != nil || len(p) > 0 {
						return false
					}
				}
				return true
			})
			// More hits, and the first batch again: nothing newly reached.
			if _, err := st.Ingest(ctx, agent.AgentID, e2eBatch(agent.AgentID, 2, 9)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Ingest(ctx, agent.AgentID, e2eBatch(agent.AgentID, 1, 3)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // ten polls
			stop()

			c.mu.Lock()
			defer c.mu.Unlock()
			if c.records != 1 || c.reqs.Load() != 4 {
				t.Fatalf("collector accepted %d records after %d requests, want exactly 1 after 4", c.records, c.reqs.Load())
			}
			logs := decodeOTLP(t, c.bodies[0])
			rl := logs.ResourceLogs().At(0)
			checkAttrs(t, "resource", rl.Resource().Attributes(), map[string]any{
				"service.name":                   "checkout",
				"deployment.environment.name":    "prod",
				"host.name":                      "web-1",
				"process.pid":                    int64(4242),
				"process.executable.path":        "/app/checkout",
				"process.executable.name":        "checkout",
				"process.executable.build_id.go": "bid/checkout",
				"container.id":                   "c0ffee",
				"k8s.pod.name":                   "checkout-7d9",
				"k8s.namespace.name":             "shop",
			})
			rec := rl.ScopeLogs().At(0).LogRecords().At(0)
			a := rec.Attributes().AsRaw()
			if rec.EventName() != EventName || a["code.function.name"] != "main.handle" || a["code.file.path"] != "example.com/checkout/main.go" ||
				a["code.line.number"] != int64(22) || a["reach.vulnerability.id"] != "GO-2021-0113" || a["reach.fix.command"] != "go get golang.org/x/text@v0.3.7" {
				t.Errorf("log record %s: %v", rec.EventName(), a)
			}
			if !rec.Timestamp().AsTime().Equal(e2eStart.Add(time.Minute)) {
				t.Errorf("log record time %v, want the first hit %v", rec.Timestamp().AsTime(), e2eStart.Add(time.Minute))
			}

			mu.Lock()
			defer mu.Unlock()
			if len(hooks) != 1 || hookReqs.Load() != 1 {
				t.Fatalf("webhook got %d payloads in %d requests, want 1", len(hooks), hookReqs.Load())
			}
			if h := hooks[0]; h.Finding.OSV != "GO-2021-0113" || h.Finding.Callsite == nil || h.Finding.Callsite.Function != "main.handle" ||
				h.Seen == nil || h.Seen.Labels["k8s.pod.name"] != "checkout-7d9" || h.Finding.Triage == nil || h.Finding.Triage.State != store.StateAffected {
				t.Errorf("webhook payload %+v", h)
			}

			checkExports(t, st, agent.AgentID)
		})
	}
}

// checkExports reads the service's exports over HTTP from the real store,
// before and after a person triages the linked finding.
func checkExports(t *testing.T, st *store.Store, agentID string) {
	ctx := context.Background()
	mux := http.NewServeMux()
	Register(mux, st, nil)
	vexOf := func() *vex.VEX {
		w := get(t, mux, PathOpenVEX+"?service=checkout")
		if w.Code != 200 {
			t.Fatalf("openvex: %d %s", w.Code, w.Body)
		}
		doc, err := vex.Parse(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	const product = "pkg:golang/example.com/checkout@v1.0.0"
	doc := vexOf()
	if got := doc.Matches("GO-2021-0113", product, []string{"pkg:golang/golang.org/x/text@v0.3.5"}); len(got) != 1 ||
		got[0].Status != vex.StatusAffected || !bytes.Contains([]byte(got[0].StatusNotes), []byte("main.handle (example.com/checkout/main.go:22)")) {
		t.Errorf("reached finding: %+v", got)
	}
	if got := doc.Matches("GO-2022-0969", product, nil); len(got) != 1 || got[0].Status != vex.StatusAffected {
		t.Errorf("linked finding without triage: %+v", got)
	}
	now := time.Now()
	if _, err := st.SetTriage(ctx, store.TriageRequest{Service: "checkout", OSV: "GO-2022-0969", Triage: store.Triage{
		State: store.StateNotAffected, Justification: "vulnerable_code_not_in_execute_path", Note: "no HTTP/2 server", By: "alice", At: &now,
	}}); err != nil {
		t.Fatal(err)
	}
	doc = vexOf()
	if got := doc.Matches("GO-2022-0969", product, nil); len(got) != 1 || got[0].Status != vex.StatusNotAffected ||
		got[0].Justification != vex.VulnerableCodeNotInExecutePath || got[0].ImpactStatement != "no HTTP/2 server" {
		t.Errorf("triaged finding: %+v", got)
	}

	w := get(t, mux, PathSARIF+"?service=checkout")
	var log sarifLog
	if err := json.Unmarshal(w.Body.Bytes(), &log); err != nil || len(log.Runs) != 1 {
		t.Fatalf("sarif: %v %s", err, w.Body)
	}
	var places []string
	for _, r := range log.Runs[0].Results {
		loc := r.Locations[0].PhysicalLocation
		places = append(places, r.RuleID+" "+loc.ArtifactLocation.URIBaseID+loc.ArtifactLocation.URI)
		if r.RuleID == "GO-2022-0969" && len(r.Suppressions) != 1 {
			t.Errorf("triaged result not suppressed: %+v", r)
		}
	}
	if len(places) != 2 || places[0] != "GO-2021-0113 %SRCROOT%main.go" {
		t.Errorf("sarif results at %q", places)
	}

	w = get(t, mux, PathCSV+"?service=checkout&environment=prod&status=reached")
	rows := readCSV(t, w.Body.Bytes())
	if len(rows) != 1 || rows[0]["hits"] != "9" || rows[0]["hosts"] != "web-1" || rows[0]["triage_state"] != "affected" || rows[0]["triage_by"] != "reach" {
		t.Errorf("csv rows %v", rows)
	}
	if w := get(t, mux, PathOpenVEX+"?service=nope"); w.Code != 404 {
		t.Errorf("unknown service: %d", w.Code)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}
