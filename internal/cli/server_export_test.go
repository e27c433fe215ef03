package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvex/go-vex/pkg/vex"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/export"
)

// TestServerExports runs reach server with -otlp and -webhook: a batch
// with a reached finding reaches an OTLP collector (read with the
// collector's own decoder) as one log record and a webhook as one POST
// signed with the server's secret, and the exports answer the admin only.
func TestServerExports(t *testing.T) {
	var mu sync.Mutex
	var records []plog.Logs
	var hooks [][]byte
	var sigs []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(body)
		if r.URL.Path != "/v1/logs" || err != nil {
			t.Errorf("collector: %s: %v", r.URL.Path, err)
		}
		mu.Lock()
		records = append(records, logs)
		mu.Unlock()
	}))
	defer collector.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, body)
		sigs = append(sigs, r.Header.Get(export.SignatureHeader))
		mu.Unlock()
	}))
	defer hook.Close()

	data := filepath.Join(t.TempDir(), "data")
	p := startServerProc(t, "-data", data, "-listen", "127.0.0.1:0", "-otlp", collector.URL, "-webhook", hook.URL+"/reach")
	raw, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(raw))
	res := runReach(t, "server", "enrol-token", "-data", data)
	c := http.DefaultClient
	var agent fleet.EnrolResponse
	code, body := httpDo(t, c, "POST", p.url+fleet.PathEnrol, strings.TrimSpace(res.stdout), fleet.EnrolRequest{Hostname: "web-1"})
	if code != 200 || json.Unmarshal(body, &agent) != nil {
		t.Fatalf("enrol: %d %s", code, body)
	}
	first := time.Now().UTC().Truncate(time.Second)
	b := fleet.Batch{
		AgentID: agent.AgentID, Seq: 1, Sent: first, Agent: fleet.AgentState{Hostname: "web-1"},
		Observations: []fleet.Observation{{
			Instance: "web-1/1", Host: "web-1", Service: "checkout", Environment: "prod", Mode: "run", PIDs: []int{77}, Started: first,
			Labels: map[string]string{"k8s.pod.name": "checkout-1"},
			Binary: &report.Binary{
				Path: "/app/checkout", BuildID: "bid", GoVersion: "go1.26.8", MainModule: "example.com/checkout", MainVersion: "v1.0.0",
				Modules: []report.Module{{Path: "golang.org/x/text", Version: "v0.3.5"}},
				Findings: []*report.Finding{{
					OSV: "GO-2021-0113", Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.7", Status: report.Reached,
					Symbols: []*report.Symbol{{Package: "golang.org/x/text/language", Name: "Parse", Status: report.Reached, Hits: 1, FirstSeen: &first,
						Callsites: []*report.Callsite{{Function: "main.main", File: "example.com/checkout/main.go", Line: 9, Hits: 1}}}},
				}},
			},
		}},
	}
	sent := time.Now()
	if code, body := httpDo(t, c, "POST", p.url+fleet.PathReport, agent.Token, b); code != 200 {
		t.Fatalf("report: %d %s", code, body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n, m := len(records), len(hooks)
		mu.Unlock()
		if n >= 1 && m >= 1 {
			t.Logf("delivered to both within %v of the report", time.Since(sent).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d OTLP requests, %d webhook POSTs", n, m)
		}
	}

	code, body = httpDo(t, c, "GET", p.url+export.PathWebhookSecret, admin, nil)
	var secret struct{ Secret string }
	if code != 200 || json.Unmarshal(body, &secret) != nil || secret.Secret == "" {
		t.Fatalf("webhook secret: %d %s", code, body)
	}
	code, body = httpDo(t, c, "GET", p.url+export.PathOpenVEX+"?service=checkout", admin, nil)
	doc, err := vex.Parse(body)
	if code != 200 || err != nil {
		t.Fatalf("openvex: %d %v %s", code, err, body)
	}
	if got := doc.Matches("GO-2021-0113", "pkg:golang/example.com/checkout@v1.0.0", nil); len(got) != 1 || got[0].Status != vex.StatusAffected {
		t.Errorf("openvex statements %+v", got)
	}
	for _, path := range []string{export.PathOpenVEX + "?service=checkout", export.PathSARIF + "?service=checkout", export.PathCSV, export.PathWebhookSecret} {
		if code, _ := httpDo(t, c, "GET", p.url+path, agent.Token, nil); code != 401 {
			t.Errorf("%s with an agent token: %d, want 401", path, code)
		}
	}
	if exit, stderr := p.stop(t, syscall.SIGTERM); exit != 0 {
		t.Errorf("SIGTERM: exit %d\n%s", exit, stderr)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(records) != 1 || records[0].LogRecordCount() != 1 {
		t.Fatalf("collector got %d requests, want one with one record", len(records))
	}
	rl := records[0].ResourceLogs().At(0)
	attrs := rl.ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	resAttrs := rl.Resource().Attributes().AsRaw()
	if resAttrs["service.name"] != "checkout" || resAttrs["k8s.pod.name"] != "checkout-1" || resAttrs["process.pid"] != int64(77) ||
		attrs["code.function.name"] != "main.main" || attrs["code.line.number"] != int64(9) {
		t.Errorf("record: resource %v, attributes %v", resAttrs, attrs)
	}
	if len(hooks) != 1 || !export.VerifySignature([]byte(secret.Secret), hooks[0], sigs[0]) {
		t.Errorf("webhook: %d POSTs, signature %q verifies: %v", len(hooks), sigs, len(hooks) == 1 && export.VerifySignature([]byte(secret.Secret), hooks[0], sigs[0]))
	}
}
