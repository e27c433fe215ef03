package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// TestQueries checks the store's read path (store/queries.go,
// overview.go) on SQLite and PostgreSQL against the same answers
// computed in Go from the rows inserted. (It lives here, with the bulk
// inserts it shares with BenchmarkOverview.)
func TestQueries(t *testing.T) {
	for _, dialect := range []struct {
		name string
		open func(testing.TB) *testDB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(dialect.name, func(t *testing.T) {
			td := dialect.open(t)
			now := time.Now()
			rows := fleetRows(1500, 100, now)
			td.insert(t, rows)
			checkOverview(t, td.st, rows, now)
			checkFilters(t, td.st, rows)
			checkServices(t, td.st, rows)
		})
	}
}

func checkOverview(t *testing.T, st *store.Store, rows []row, now time.Time) {
	ctx := context.Background()
	o, err := st.Overview(ctx, store.Filter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	type agg struct{ reached, linked map[string]bool }
	perOSV := map[string]*agg{}
	maxRank := map[[2]string]int{} // OSV, service
	findings := map[report.Status]int{}
	services, hosts := map[string]bool{}, map[string]bool{}
	days := map[int]int{}
	from := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -store.TimelineDays+1)
	for _, r := range rows {
		k := [2]string{r.OSV, r.Service}
		maxRank[k] = max(maxRank[k], r.Status.Rank())
		findings[r.Status]++
		services[r.Service], hosts[r.Host] = true, true
		if r.FirstReached != nil && !r.FirstReached.Before(from) {
			days[int(r.FirstReached.Sub(from)/(24*time.Hour))]++
		}
	}
	for k, rank := range maxRank {
		a := perOSV[k[0]]
		if a == nil {
			a = &agg{map[string]bool{}, map[string]bool{}}
			perOSV[k[0]] = a
		}
		switch rank {
		case 4:
			a.reached[k[1]] = true
		case 3, 2:
			a.linked[k[1]] = true
		}
	}
	if len(o.Ranked) != len(perOSV) {
		t.Fatalf("overview ranks %d OSV entries, want %d", len(o.Ranked), len(perOSV))
	}
	for i, v := range o.Ranked {
		a := perOSV[v.OSV]
		if a == nil || v.ReachedServices != len(a.reached) || v.LinkedServices != len(a.linked) {
			t.Errorf("%s: reached in %d, linked in %d services; want %d, %d", v.OSV, v.ReachedServices, v.LinkedServices, len(a.reached), len(a.linked))
		}
		if i > 0 {
			p := o.Ranked[i-1]
			if p.ReachedServices < v.ReachedServices || p.ReachedServices == v.ReachedServices && p.LinkedServices < v.LinkedServices {
				t.Errorf("ranked %s (%d, %d) after %s (%d, %d)", v.OSV, v.ReachedServices, v.LinkedServices, p.OSV, p.ReachedServices, p.LinkedServices)
			}
		}
		if v.Summary != "summary of "+v.OSV || len(v.Aliases) != 1 {
			t.Errorf("%s: summary %q, aliases %q", v.OSV, v.Summary, v.Aliases)
		}
	}
	for _, s := range statuses {
		if o.Findings[s] != findings[s] {
			t.Errorf("%d findings %s, want %d", o.Findings[s], s, findings[s])
		}
	}
	if o.Services != len(services) || o.Hosts != len(hosts) {
		t.Errorf("%d services, %d hosts; want %d, %d", o.Services, o.Hosts, len(services), len(hosts))
	}
	prodHosts, prodServices := map[string]bool{}, map[string]bool{}
	for _, r := range rows {
		if r.Env == "prod" {
			prodHosts[r.Host], prodServices[r.Service] = true, true
		}
	}
	prod, err := st.Overview(ctx, store.Filter{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if prod.Hosts != len(prodHosts) || prod.Services != len(prodServices) {
		t.Errorf("in prod: %d hosts, %d services; want %d, %d", prod.Hosts, prod.Services, len(prodHosts), len(prodServices))
	}
	if len(o.Timeline) != store.TimelineDays || !o.Timeline[0].Day.Equal(from) {
		t.Fatalf("timeline of %d days from %v, want %d from %v", len(o.Timeline), o.Timeline[0].Day, store.TimelineDays, from)
	}
	for i, d := range o.Timeline {
		if d.Count != days[i] {
			t.Errorf("timeline %s: %d, want %d", d.Day.Format(time.DateOnly), d.Count, days[i])
		}
	}
}

func checkFilters(t *testing.T, st *store.Store, rows []row) {
	ctx := context.Background()
	tests := []struct {
		f     store.Filter
		match func(row) bool
	}{
		{store.Filter{}, func(row) bool { return true }},
		{store.Filter{Service: "svc-007"}, func(r row) bool { return r.Service == "svc-007" }},
		{store.Filter{Environment: "prod"}, func(r row) bool { return r.Env == "prod" }},
		{store.Filter{Status: report.Reached}, func(r row) bool { return r.Status == report.Reached }},
		{store.Filter{Triage: "none"}, func(r row) bool { return r.Status != report.Reached }},
		{store.Filter{Triage: store.StateAffected, Environment: "staging"}, func(r row) bool { return r.Status == report.Reached && r.Env == "staging" }},
		{store.Filter{OSV: "GO-2025-0037"}, func(r row) bool { return r.OSV == "GO-2025-0037" }},
		{store.Filter{Query: "M1/P"}, func(r row) bool { return strings.Contains(r.Package, "m1/p") }},
		{store.Filter{Query: "cve-go-2025-0037"}, func(r row) bool { return r.OSV == "GO-2025-0037" }},
		{store.Filter{Query: "summary of go-2025-01"}, func(r row) bool { return strings.HasPrefix(r.OSV, "GO-2025-01") }},
		// Wildcards and quotes are text, not SQL.
		{store.Filter{Query: "%"}, func(row) bool { return false }},
		{store.Filter{Query: "svc_00"}, func(row) bool { return false }},
		{store.Filter{Query: `' OR 1=1 --`}, func(row) bool { return false }},
		{store.Filter{Service: `svc-001' OR '1'='1`}, func(row) bool { return false }},
	}
	for _, tt := range tests {
		want := 0
		for _, r := range rows {
			if tt.match(r) {
				want++
			}
		}
		f := tt.f
		f.Limit = store.MaxLimit
		got, err := st.Findings(ctx, f)
		if err != nil {
			t.Fatalf("Findings(%+v): %v", tt.f, err)
		}
		if len(got) != want {
			t.Errorf("Findings(%+v): %d, want %d", tt.f, len(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Status.Rank() > got[i-1].Status.Rank() {
				t.Errorf("Findings(%+v): %s after %s", tt.f, got[i].Status, got[i-1].Status)
				break
			}
		}
		o, err := st.Overview(ctx, f)
		if err != nil {
			t.Fatalf("Overview(%+v): %v", tt.f, err)
		}
		n := 0
		for _, c := range o.Findings {
			n += c
		}
		if n != want {
			t.Errorf("Overview(%+v) counts %d findings, want %d", tt.f, n, want)
		}
	}
	// Paging: the pages of 100 are the whole list, in order.
	all, err := st.Findings(ctx, store.Filter{Service: "svc-003", Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var paged []store.Finding
	for off := 0; ; off += 7 {
		p, err := st.Findings(ctx, store.Filter{Service: "svc-003", Limit: 7, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, p...)
		if len(p) < 7 {
			break
		}
	}
	if len(paged) != len(all) {
		t.Fatalf("paged %d findings, want %d", len(paged), len(all))
	}
	for i := range all {
		if paged[i].ID != all[i].ID {
			t.Fatalf("page order differs at %d", i)
		}
	}
	for _, f := range []store.Filter{{Status: "bogus"}, {Triage: "maybe"}, {Limit: -1}} {
		if _, err := st.Findings(ctx, f); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("Findings(%+v) = %v, want ErrInvalid", f, err)
		}
	}
}

func checkServices(t *testing.T, st *store.Store, rows []row) {
	ctx := context.Background()
	per := map[string]int{}
	for _, r := range rows {
		per[r.Service]++
	}
	list, err := st.Services(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(per) {
		t.Fatalf("%d services, want %d", len(list), len(per))
	}
	for _, s := range list {
		n := 0
		for _, c := range s.Counts {
			n += c
		}
		if n != per[s.Name] || s.Binaries != 5 || len(s.Environments) != 1 {
			t.Errorf("service %s: %d findings, %d binaries, environments %q; want %d, 5, one", s.Name, n, s.Binaries, s.Environments, per[s.Name])
		}
	}
	svc, err := st.Service(ctx, "svc-042", store.Filter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Binaries) != 5 || len(svc.Findings) != per["svc-042"] || len(svc.Binaries[0].Modules) != 1 {
		t.Errorf("svc-042: %d binaries, %d findings; want 5, %d", len(svc.Binaries), len(svc.Findings), per["svc-042"])
	}
	for _, f := range svc.Findings {
		if f.Service != "svc-042" || len(f.Hosts) != 1 || f.BinaryPath != "/srv/svc-042" {
			t.Fatalf("svc-042's finding %+v", f)
		}
	}
	if _, err := st.Service(ctx, "nope", store.Filter{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Service(nope) = %v, want ErrNotFound", err)
	}
	v, err := st.Vuln(ctx, "GO-2025-0037", store.Filter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range rows {
		if r.OSV == "GO-2025-0037" {
			want++
		}
	}
	if len(v.Findings) != want || v.Summary != "summary of GO-2025-0037" {
		t.Errorf("GO-2025-0037: %d findings, summary %q; want %d", len(v.Findings), v.Summary, want)
	}
}
