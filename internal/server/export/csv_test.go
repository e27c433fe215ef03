package export

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/server/store"
)

func TestCSVSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=b", "a=b"},
		{"", ""},
		{"'=1", "'=1"},
		{"GO-2021-0113", "GO-2021-0113"},
	}
	for _, tt := range tests {
		if got := csvSafe(tt.in); got != tt.want {
			t.Errorf("csvSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// readCSV parses an export, checks its header, and returns its rows by
// column name.
func readCSV(t *testing.T, data []byte) []map[string]string {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, data)
	}
	if len(records) == 0 || !slices.Equal(records[0], CSVColumns) {
		t.Fatalf("header = %q, want %q", records[0], CSVColumns)
	}
	var rows []map[string]string
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, c := range CSVColumns {
			row[c] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

func TestCSV(t *testing.T) {
	svc := fixtureService()
	var buf bytes.Buffer
	cw := NewCSVWriter(&buf)
	// Two pages, as the HTTP handler writes them.
	if err := cw.Write(svc.Findings[:3]); err != nil {
		t.Fatal(err)
	}
	if err := cw.Write(svc.Findings[3:]); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, buf.Bytes())
	if len(rows) != len(svc.Findings) {
		t.Fatalf("%d rows, want one per finding: %d", len(rows), len(svc.Findings))
	}
	for i, row := range rows {
		for c, v := range row {
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				t.Errorf("row %d, %s: %q can run as a formula", i, c, v)
			}
		}
	}
	tests := []struct {
		row  int
		col  string
		want string
	}{
		{0, "id", "1"},
		{0, "service", "shop"},
		{0, "osv", "GO-2021-0113"},
		{0, "aliases", "CVE-2020-28851"},
		{0, "upgrade", "go get golang.org/x/text@v0.3.7"},
		{0, "callsite_function", "main.handle"},
		{0, "callsite_file", "example.com/shop/main.go"},
		{0, "callsite_line", "22"},
		{0, "hits", "5"},
		{0, "first_reached", "2026-11-30T09:03:00Z"},
		{0, "triage_state", "affected"},
		{0, "triage_by", "reach"},
		{0, "environments", "prod"},
		{2, "status", "linked"},
		{2, "upgrade", "go get toolchain@go1.19.1"},
		{2, "triage_justification", "vulnerable_code_not_in_execute_path"},
		{2, "triage_note", "'" + hostile},
		{2, "callsite_line", ""},
		{2, "first_reached", ""},
		{3, "fixed_version", ""},
		{3, "upgrade", ""},
		{5, "triage_expires", "2026-11-30T09:02:00Z"},
		{6, "summary", "'" + hostile},
		{6, "symbol", "'" + hostile},
		{6, "callsite_function", "'" + hostile},
		{6, "callsite_file", "example.com/shop/" + hostile + ".go"},
		{6, "hosts", "'" + hostile},
		{6, "triage_state", "fixed"},
	}
	for _, tt := range tests {
		if got := rows[tt.row][tt.col]; got != tt.want {
			t.Errorf("row %d %s = %q, want %q", tt.row, tt.col, got, tt.want)
		}
	}
}

func TestCSVEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := NewCSVWriter(&buf).Close(); err != nil {
		t.Fatal(err)
	}
	if rows := readCSV(t, buf.Bytes()); len(rows) != 0 {
		t.Errorf("%d rows, want none", len(rows))
	}
	var none []store.Finding
	buf.Reset()
	cw := NewCSVWriter(&buf)
	if err := cw.Write(none); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want the header once:\n%s", n, buf.String())
	}
}
