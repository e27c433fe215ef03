package dashboard

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// FuzzFilter sends hostile filters to the store's read path (SQLite):
// each query either is refused as invalid or answers exactly the findings
// that match, as computed here from the rows inserted. Quotes, LIKE's
// wildcards and escapes are text; nothing is SQL.
func FuzzFilter(f *testing.F) {
	td := openSQLite(f)
	rows := fleetRows(400, 8, time.Now())
	td.insert(f, rows)
	for _, seed := range [][5]string{
		{"", "", "", "", ""},
		{"svc-001", "prod", "", "", "m1"},
		{"", "", "reached", "affected", "CVE-GO"},
		{"", "", "", "none", `%`},
		{"", "", "", "", `_`},
		{"", "", "", "", `\`},
		{"", "", "", "", `' OR 1=1 --`},
		{`svc-001' OR '1'='1`, "", "", "", ""},
		{"", "", "bogus", "", ""},
		{"", "", "", "", "\x00"},
		{"", "", "", "", "\xff"},
		{"", "", "", "", `"]`},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4])
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, service, env, status, triage, q string) {
		flt := store.Filter{Service: service, Environment: env, Status: report.Status(status), Triage: triage, Query: q, Limit: store.MaxLimit}
		got, err := td.st.Findings(ctx, flt)
		if errors.Is(err, store.ErrInvalid) {
			return
		}
		if err != nil {
			t.Fatalf("Findings(%+v): %v", flt, err)
		}
		var want []int64
		for i, r := range rows {
			if matches(r, flt) {
				want = append(want, int64(i+1))
			}
		}
		ids := make([]int64, len(got))
		for i, g := range got {
			ids[i] = g.ID
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("Findings(%+v): %d findings, want %d", flt, len(ids), len(want))
		}
		o, err := td.st.Overview(ctx, flt)
		if err != nil {
			t.Fatalf("Overview(%+v): %v", flt, err)
		}
		n := 0
		for _, c := range o.Findings {
			n += c
		}
		if n != len(want) {
			t.Fatalf("Overview(%+v) counts %d findings, want %d", flt, n, len(want))
		}
	})
}

// matches is the filter's meaning, for rows inserted by testDB.insert
// (summary "summary of OSV", aliases ["CVE-OSV"], triage affected when
// reached). Text is compared lower case in ASCII only, as SQL's LOWER.
func matches(r row, f store.Filter) bool {
	triage := "none"
	if r.Status == report.Reached {
		triage = store.StateAffected
	}
	if f.Service != "" && r.Service != f.Service || f.Environment != "" && r.Env != f.Environment ||
		f.Status != "" && r.Status != f.Status || f.Triage != "" && triage != f.Triage {
		return false
	}
	if f.Query == "" {
		return true
	}
	q := asciiLower(f.Query)
	for _, s := range []string{r.OSV, r.Module, r.Package, r.Symbol, r.Service, "summary of " + r.OSV, `["CVE-` + r.OSV + `"]`} {
		if strings.Contains(asciiLower(s), q) {
			return true
		}
	}
	return false
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
