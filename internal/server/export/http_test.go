package export

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// memReader serves the fixture service as the store's queries would,
// honouring Limit and Offset, and remembers the filters it got.
type memReader struct {
	svc       *store.Service
	filters   []store.Filter
	err       error
	failAfter int // Findings fails after this many pages, when > 0
}

func (m *memReader) Service(ctx context.Context, name string, f store.Filter) (*store.Service, error) {
	if m.err != nil {
		return nil, m.err
	}
	if name != m.svc.Name {
		return nil, fmt.Errorf("service %q: %w", name, store.ErrNotFound)
	}
	svc := *m.svc
	svc.Findings = svc.Findings[:1] // a page: the handler must read them all
	return &svc, nil
}

func (m *memReader) Findings(ctx context.Context, f store.Filter) ([]store.Finding, error) {
	m.filters = append(m.filters, f)
	if m.err != nil {
		return nil, m.err
	}
	if m.failAfter > 0 && len(m.filters) > m.failAfter {
		return nil, fmt.Errorf("store x: %w", store.ErrUnavailable)
	}
	var out []store.Finding
	for _, x := range m.svc.Findings {
		if (f.Service == "" || x.Service == f.Service) && (f.Status == "" || x.Status == f.Status) {
			out = append(out, x)
		}
	}
	out = out[min(f.Offset, len(out)):]
	return out[:min(f.Limit, len(out))], nil
}

func (m *memReader) Secret(ctx context.Context, name string) ([]byte, error) {
	if m.err != nil {
		return nil, m.err
	}
	return []byte("k-" + name), nil
}

// protectHeader lets through requests with X-Admin: yes.
func protectHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Admin") != "yes" {
			http.Error(w, "login", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func get(t *testing.T, mux *http.ServeMux, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("X-Admin", "yes")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func TestHandlers(t *testing.T) {
	defer func(n int) { pageSize = n }(pageSize)
	pageSize = 2 // the fixture's 7 findings take 4 pages

	m := &memReader{svc: fixtureService()}
	mux := http.NewServeMux()
	register(mux, m, protectHeader)

	w := get(t, mux, PathOpenVEX+"?service=shop")
	if w.Code != 200 || w.Header().Get("Content-Disposition") != `attachment; filename="shop.openvex.json"` || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("openvex: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	doc, err := vex.Parse(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(doc.Statements); n != 6 {
		t.Errorf("openvex over HTTP: %d statements, want every finding's: 6", n)
	}

	w = get(t, mux, PathSARIF+"?service=shop")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/sarif+json" || w.Header().Get("Content-Disposition") != `attachment; filename="shop.sarif"` {
		t.Fatalf("sarif: %d %v", w.Code, w.Header())
	}
	var log sarifLog
	if err := json.Unmarshal(w.Body.Bytes(), &log); err != nil || len(log.Runs) != 1 || len(log.Runs[0].Results) != 7 {
		t.Errorf("sarif over HTTP: %v, %+v", err, log)
	}

	m.filters = nil
	w = get(t, mux, PathCSV+"?service=shop&environment=prod&status=reached")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		w.Header().Get("Content-Disposition") != `attachment; filename="reach-findings-shop-prod-reached.csv"` {
		t.Fatalf("csv: %d %v", w.Code, w.Header())
	}
	if rows := readCSV(t, w.Body.Bytes()); len(rows) != 3 {
		t.Errorf("csv: %d rows, want the 3 reached", len(rows))
	}
	if f := m.filters[0]; f.Service != "shop" || f.Environment != "prod" || f.Status != report.Reached {
		t.Errorf("csv filter %+v", f)
	}
	w = get(t, mux, PathWebhookSecret)
	var secret struct{ Secret string }
	if err := json.Unmarshal(w.Body.Bytes(), &secret); err != nil || secret.Secret != hex.EncodeToString([]byte("k-webhook")) || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("webhook secret: %v %q %v", err, w.Body, w.Header())
	}

	w = get(t, mux, PathCSV)
	if rows := readCSV(t, w.Body.Bytes()); len(rows) != 7 || w.Header().Get("Content-Disposition") != `attachment; filename="reach-findings.csv"` {
		t.Errorf("unfiltered csv: %d rows, %v", len(rows), w.Header())
	}
}

func TestHandlerErrors(t *testing.T) {
	m := &memReader{svc: fixtureService()}
	mux := http.NewServeMux()
	register(mux, m, protectHeader)
	tests := []struct {
		target string
		code   int
		msg    string
	}{
		{PathOpenVEX, 400, "service parameter is missing"},
		{PathSARIF + "?service=", 400, "service parameter is missing"},
		{PathOpenVEX + "?service=nope", 404, `service \"nope\": not found`},
		{PathCSV + "?status=bad", 400, "use reached, not_watched, linked or imported"},
	}
	for _, tt := range tests {
		w := get(t, mux, tt.target)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.msg) || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q, want %d with %q", tt.target, w.Code, w.Body, tt.code, tt.msg)
		}
	}
	m.err = fmt.Errorf("store x: %w", store.ErrUnavailable)
	for _, p := range []string{PathOpenVEX + "?service=shop", PathCSV} {
		if w := get(t, mux, p); w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s with the database down: %d, want 503", p, w.Code)
		}
	}
	m.err = fmt.Errorf("disk on fire")
	if w := get(t, mux, PathCSV); w.Code != 500 || strings.Contains(w.Body.String(), "fire") {
		t.Errorf("internal error: %d %q: want 500 without the details", w.Code, w.Body)
	}
	// protect applies to every endpoint.
	for _, p := range []string{PathOpenVEX + "?service=shop", PathSARIF + "?service=shop", PathCSV, PathWebhookSecret} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s without login: %d", p, w.Code)
		}
	}
}

// TestCSVCutOff: when the store fails after the first page is sent, the
// download fails; it never ends as a short table.
func TestCSVCutOff(t *testing.T) {
	defer func(n int) { pageSize = n }(pageSize)
	pageSize = 2
	mux := http.NewServeMux()
	register(mux, &memReader{svc: fixtureService(), failAfter: 1}, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + PathCSV)
	if err != nil {
		return // cut off before the headers went out
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("the download ended cleanly after a failure: %d %q", resp.StatusCode, body)
	}
}

func TestAttachment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop.sarif", `attachment; filename="shop.sarif"`},
		{"a\"b/../c\r\nX: y.csv", `attachment; filename="a_b_.._c__X__y.csv"`},
		{"../../etc/passwd", `attachment; filename="_.._etc_passwd"`},
		{"...", `attachment; filename="export"`},
		{"héllo.csv", `attachment; filename="h_llo.csv"`},
	}
	for _, tt := range tests {
		if got := attachment(tt.in); got != tt.want {
			t.Errorf("attachment(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
