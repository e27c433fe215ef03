package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openvex/go-vex/pkg/vex"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// FuzzExports puts one string an attacker controls (a symbol, a file
// name, a label, a note) everywhere in a reached finding, and checks that
// every format still parses with its own reader and gives the string
// back: CSV (with the ' of a cell that could be a formula, and no cell
// that still could), OpenVEX (go-vex), OTLP (the collector's decoder) and
// the webhook's JSON.
func FuzzExports(f *testing.F) {
	for _, s := range []string{hostile, "", "=1+1", "-", "\r\n", "a\"b", "\xff\xfe", "</script>", "\u202e", "@x\ty"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		svc := fixtureService()
		x := &svc.Findings[6]
		x.Summary, x.Symbol, x.Callsite.Function, x.Callsite.File, x.Triage.Note, x.Hosts = s, s, s, s, s, []string{s}
		x.Aliases = []string{s}
		// JSON writes each byte of invalid UTF-8 as U+FFFD; compare with
		// what it can carry.
		var w strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			w.WriteRune(r) // utf8.RuneError for an invalid byte
			i += n
		}
		want := w.String()

		var buf bytes.Buffer
		if err := NewCSVWriter(&buf).Write([]store.Finding{*x}); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) != 2 || len(recs[1]) != len(CSVColumns) {
			t.Fatalf("CSV does not parse back: %v %q", err, recs)
		}
		for i, cell := range recs[1] {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("column %s: %q can run as a formula", CSVColumns[i], cell)
			}
		}
		symbol := recs[1][14]
		// encoding/csv reads a quoted \r\n as \n.
		if w := strings.ReplaceAll(csvSafe(s), "\r\n", "\n"); symbol != w {
			t.Errorf("CSV symbol %q, want %q", symbol, w)
		}

		buf.Reset()
		if err := WriteOpenVEX(&buf, svc, *at(30)); err != nil {
			t.Fatal(err)
		}
		doc, err := vex.Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("go-vex: %v", err)
		}
		if got := doc.Matches("GO-2024-0001", shopV120, nil); len(got) != 1 || !strings.Contains(got[0].StatusNotes, want) {
			t.Errorf("OpenVEX lost the string: %+v", got)
		}

		buf.Reset()
		if err := WriteSARIF(&buf, svc, *at(30)); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(buf.Bytes()) {
			t.Error("SARIF is not JSON")
		}

		e := Event{Finding: *x, Sighting: store.Sighting{Host: s, Labels: map[string]string{"k8s.pod.name": s, s: "v"}}}
		body, err := EncodeOTLP([]Event{e})
		if err != nil {
			t.Fatal(err)
		}
		logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(body)
		if err != nil {
			t.Fatalf("collector: %v", err)
		}
		rec := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		if v, ok := rec.Attributes().Get("reach.symbol"); (s != "") != ok || ok && v.Str() != want {
			t.Errorf("OTLP reach.symbol %q, want %q", v.AsString(), want)
		}

		body, err = EncodeWebhook(&e, 1, *at(30))
		if err != nil {
			t.Fatal(err)
		}
		var p WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil || p.Finding.Symbol != want || p.Finding.Status != report.Reached {
			t.Errorf("webhook: %v, symbol %q", err, p.Finding.Symbol)
		}
	})
}
