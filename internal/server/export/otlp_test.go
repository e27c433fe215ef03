package export

import (
	"encoding/json"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/reach-sca/reach/internal/server/store"
)

// fixtureEvents are two newly reached findings: a plain one seen in a
// Kubernetes pod, and the hostile one.
func fixtureEvents() []Event {
	svc := fixtureService()
	return []Event{
		{
			Finding: svc.Findings[0],
			Sighting: store.Sighting{
				Instance: "web-1/4242/99", AgentID: "agent-1", Host: "web-1", Environment: "prod", PIDs: []int{4242, 4243},
				Labels: map[string]string{
					"container.id": "c0ffee", "k8s.pod.name": "shop-7d9", "k8s.namespace.name": "payments",
					"host.name": "not-this-one", // a label never overrides what the server knows
				},
			},
			Queued: *at(4),
		},
		{Finding: svc.Findings[6], Queued: *at(8)},
	}
}

// decodeOTLP decodes an OTLP/HTTP JSON request with the OpenTelemetry
// collector's own decoder, and checks that the collector's encoder writes
// back the same JSON: nothing in the request is unknown to the collector
// (its decoder skips unknown fields) or spelled another way.
func decodeOTLP(t *testing.T, body []byte) plog.Logs {
	t.Helper()
	logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(body)
	if err != nil {
		t.Fatalf("the collector cannot decode the request: %v\n%s", err, body)
	}
	back, err := (&plog.JSONMarshaler{}).MarshalLogs(logs)
	if err != nil {
		t.Fatal(err)
	}
	var sent, read any
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &read); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sent, read) {
		t.Errorf("the collector read something else than was sent:\nsent %s\nread %s", body, back)
	}
	return logs
}

func TestOTLP(t *testing.T) {
	events := fixtureEvents()
	body, err := EncodeOTLP(events)
	if err != nil {
		t.Fatal(err)
	}
	logs := decodeOTLP(t, body)
	if n := logs.LogRecordCount(); n != 2 {
		t.Fatalf("%d log records, want one per event: 2", n)
	}
	if n := logs.ResourceLogs().Len(); n != 2 {
		t.Fatalf("%d resources, want 2", n)
	}

	res := logs.ResourceLogs().At(0).Resource().Attributes()
	wantRes := map[string]any{
		"service.name":                   "shop",
		"deployment.environment.name":    "prod",
		"host.name":                      "web-1",
		"process.pid":                    int64(4242),
		"process.executable.path":        "/srv/shop",
		"process.executable.name":        "shop",
		"process.executable.build_id.go": "b1/aaa",
		"container.id":                   "c0ffee",
		"k8s.pod.name":                   "shop-7d9",
		"k8s.namespace.name":             "payments",
	}
	checkAttrs(t, "resource", res, wantRes)

	rec := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	f := events[0].Finding
	if rec.EventName() != EventName || rec.SeverityNumber() != plog.SeverityNumberWarn || rec.SeverityText() != "WARN" {
		t.Errorf("event %q severity %v %q", rec.EventName(), rec.SeverityNumber(), rec.SeverityText())
	}
	if !rec.Timestamp().AsTime().Equal(*f.FirstReached) || !rec.ObservedTimestamp().AsTime().Equal(events[0].Queued) {
		t.Errorf("time %v observed %v, want the first reach %v and the queueing %v", rec.Timestamp(), rec.ObservedTimestamp(), f.FirstReached, events[0].Queued)
	}
	if want := "shop reached GO-2021-0113 (CVE-2020-28851) in golang.org/x/text@v0.3.5: golang.org/x/text/language.Parse was called from main.handle (example.com/shop/main.go:22) on host web-1. Fix: go get golang.org/x/text@v0.3.7."; rec.Body().Str() != want {
		t.Errorf("body %q\nwant %q", rec.Body().Str(), want)
	}
	checkAttrs(t, "log record", rec.Attributes(), map[string]any{
		"code.function.name":          "main.handle",
		"code.file.path":              "example.com/shop/main.go",
		"code.line.number":            int64(22),
		"code.stacktrace":             "golang.org/x/text/language.Parse(...)\n\t/root/go/pkg/mod/golang.org/x/text@v0.3.5/language/parse.go:33\nmain.handle(...)\n\texample.com/shop/main.go:22\n",
		"security_rule.name":          "GO-2021-0113",
		"security_rule.description":   "Out-of-bounds read in golang.org/x/text/language",
		"security_rule.reference":     "https://pkg.go.dev/vuln/GO-2021-0113",
		"security_rule.ruleset.name":  "Go vulnerability database",
		"security_rule.category":      "vulnerability",
		"reach.vulnerability.id":      "GO-2021-0113",
		"reach.vulnerability.aliases": []any{"CVE-2020-28851"},
		"reach.module.path":           "golang.org/x/text",
		"reach.module.version":        "v0.3.5",
		"reach.module.fixed_version":  "v0.3.7",
		"reach.fix.command":           "go get golang.org/x/text@v0.3.7",
		"reach.package":               "golang.org/x/text/language",
		"reach.symbol":                "Parse",
		"reach.status":                "reached",
		"reach.hits":                  int64(5),
		"reach.hits.lower_bound":      false,
		"reach.finding.id":            int64(1),
	})

	// The hostile one: strings intact, no sighting (the finding's own
	// host), no PID.
	res = logs.ResourceLogs().At(1).Resource().Attributes()
	checkAttrs(t, "hostile resource", res, map[string]any{
		"service.name":                   "shop",
		"host.name":                      hostile,
		"process.executable.path":        "/srv/shop",
		"process.executable.name":        "shop",
		"process.executable.build_id.go": "b1/aaa",
	})
	rec = logs.ResourceLogs().At(1).ScopeLogs().At(0).LogRecords().At(0)
	for k, want := range map[string]string{"code.function.name": hostile, "reach.symbol": hostile, "security_rule.description": hostile} {
		if v, ok := rec.Attributes().Get(k); !ok || v.Str() != want {
			t.Errorf("hostile %s = %q, want %q", k, v.AsString(), want)
		}
	}
}

// checkAttrs checks that attrs are exactly want, with their types.
func checkAttrs(t *testing.T, what string, attrs pcommon.Map, want map[string]any) {
	t.Helper()
	got := attrs.AsRaw()
	for k, w := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %#v, want %#v", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected attribute %s = %#v", what, k, got[k])
		}
	}
}
