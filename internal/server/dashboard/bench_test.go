package dashboard

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkOverview serves the fleet overview (the store's query and the
// page) with 100,000 findings stored, on SQLite and on PostgreSQL, and
// with filters, and the other pages that list findings. The goal is
// under 200 ms for the overview on a 2-core machine:
//
//	go test -run '^$' -bench Overview -benchtime 20x ./internal/server/dashboard
func BenchmarkOverview(b *testing.B) {
	for _, dialect := range []struct {
		name string
		open func(testing.TB) *testDB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		b.Run(dialect.name, func(b *testing.B) {
			t := dialect.open(b)
			start := time.Now()
			t.insert(b, fleetRows(100_000, 100, time.Now()))
			b.Logf("%s: 100,000 findings inserted in %v", dialect.name, time.Since(start).Round(time.Millisecond))
			mux := http.NewServeMux()
			New(t.st, Options{}).Register(mux, func(h http.Handler) http.Handler { return h })
			for _, path := range []string{"/", "/?environment=prod", "/?status=reached", "/?triage=none", "/?q=m1/",
				"/services", "/services/svc-042", "/vulns/GO-2025-0037"} {
				b.Run(path, func(b *testing.B) {
					var size int
					for b.Loop() {
						w := httptest.NewRecorder()
						mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
						if w.Code != http.StatusOK {
							b.Fatalf("GET %s = %d\n%s", path, w.Code, w.Body)
						}
						size = w.Body.Len()
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
					b.ReportMetric(float64(size), "bytes/page")
				})
			}
		})
	}
}
