package dashboard

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// hostile is a symbol name as a hostile agent could send it.
const hostile = `<script>window.pwned=1</script>`

type userKey struct{}

// testProtect stands for the server's login check: every request is
// alice's.
func testProtect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "alice")))
	})
}

func testUser(r *http.Request) string {
	u, _ := r.Context().Value(userKey{}).(string)
	return u
}

// fixture is a small fleet, stored through Ingest as agents send it: api
// and web reach GO-2024-0001 (api through a symbol with a hostile name),
// web links GO-2024-0002, batch imports it, and api has a standard
// library finding not watched. Agent 2 failed to apply its configuration.
// hostileID is the ID of api's finding of GO-2024-0001.
func fixture(t *testing.T) (td *testDB, hostileID int64) {
	t.Helper()
	td = openSQLite(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	tok, err := td.st.CreateEnrolToken(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	agents := make([]string, 2)
	for i, host := range []string{"h1", "<b>h2</b>"} {
		ag, err := td.st.Enrol(ctx, tok, fleet.EnrolRequest{Hostname: host, ReachVersion: "v0.9.0"})
		if err != nil {
			t.Fatal(err)
		}
		agents[i] = ag.AgentID
	}
	modM := func(v string) report.Module { return report.Module{Path: "example.com/m", Version: v} }
	modText := report.Module{Path: "golang.org/x/text", Version: "v0.3.5"}
	vuln1 := func(version string, sym *report.Symbol) *report.Finding {
		return &report.Finding{OSV: "GO-2024-0001", Aliases: []string{"CVE-2024-0001"}, Summary: "summary of GO-2024-0001",
			Module: "example.com/m", Version: version, FixedVersion: "v1.2.3", Status: report.Reached, Symbols: []*report.Symbol{sym}}
	}
	vuln2 := func(st report.Status) *report.Finding {
		f := &report.Finding{OSV: "GO-2024-0002", Aliases: []string{"CVE-2024-0002"}, Summary: "summary of GO-2024-0002",
			Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.8", Status: st}
		if st != report.Imported {
			f.Symbols = []*report.Symbol{{Package: "golang.org/x/text/language", Name: "Parse", Status: st}}
		}
		return f
	}
	obs := func(host, service, env, build string, mods []report.Module, fs ...*report.Finding) fleet.Observation {
		return fleet.Observation{Instance: host + "/" + service, Host: host, Service: service, Environment: env, Mode: "agent",
			Started: *ago(96 * time.Hour), Binary: &report.Binary{Path: "/srv/" + service, BuildID: build, GoVersion: "go1.26.8",
				MainModule: "example.com/" + service, MainVersion: "v1.0.0", Modules: mods, Findings: fs}}
	}
	batches := []fleet.Batch{
		{AgentID: agents[0], Seq: 1, Sent: now, Agent: fleet.AgentState{Hostname: "h1", ReachVersion: "v0.9.0",
			Labels: map[string]string{"k8s.namespace.name": "shop"}, Processes: 3, Probes: 12},
			Observations: []fleet.Observation{obs("h1", "api", "prod", "b-api-1", []report.Module{modM("v1.2.0")},
				vuln1("v1.2.0", &report.Symbol{Package: "example.com/m/p", Name: hostile, Status: report.Reached, Hits: 7,
					FirstSeen: ago(48 * time.Hour), LastSeen: ago(time.Minute),
					Callsites: []*report.Callsite{{Function: "main.serve", File: "/src/api/main.go", Line: 42, Hits: 7}},
					Stack:     []report.Frame{{Function: "example.com/m/p.Vuln", File: "p.go", Line: 3}, {Function: "main.serve", File: "/src/api/main.go", Line: 42}}}),
				&report.Finding{OSV: "GO-2024-0003", Summary: "summary of GO-2024-0003", Module: "stdlib", Version: "v1.21.0", FixedVersion: "v1.21.5",
					Status: report.NotWatched, Symbols: []*report.Symbol{{Package: "net/http", Name: "Serve", Status: report.NotWatched}}})}},
		{AgentID: agents[1], Seq: 1, Sent: now, Agent: fleet.AgentState{Hostname: "<b>h2</b>", ReachVersion: "v0.9.0", Processes: 1, Probes: 2},
			Applied: &fleet.Applied{Version: 0, At: now, Error: "bad target <x>"},
			Observations: []fleet.Observation{
				obs("h2", "web", "staging", "b-web-1", []report.Module{modM("v1.1.0"), modText},
					vuln1("v1.1.0", &report.Symbol{Package: "example.com/m/p", Name: "Parse", Status: report.Reached, Hits: 2,
						FirstSeen: ago(24 * time.Hour), LastSeen: ago(time.Hour),
						Callsites: []*report.Callsite{{Function: "main.page", File: "/src/web/main.go", Line: 9, Hits: 2}}}),
					vuln2(report.Linked)),
				obs("h3", "batch", "prod", "b-batch-1", []report.Module{modText}, vuln2(report.Imported)),
			}},
	}
	for _, b := range batches {
		if _, err := td.st.Ingest(ctx, b.AgentID, &b); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := td.st.Findings(ctx, store.Filter{Service: "api", OSV: "GO-2024-0001"})
	if err != nil || len(fs) != 1 {
		t.Fatalf("api's GO-2024-0001: %d findings, %v", len(fs), err)
	}
	return td, fs[0].ID
}

// serve returns the dashboard of td on a test server.
func serve(t *testing.T, td *testDB) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	New(td.st, Options{User: testUser}).Register(mux, testProtect)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestPages(t *testing.T) {
	td, _ := fixture(t)
	srv := serve(t, td)
	tests := []struct {
		path     string
		code     int
		want     []string // in this order
		dontWant []string
	}{
		{"/", 200, []string{">3<", "services", "<svg", "GO-2024-0001", "GO-2024-0003", "GO-2024-0002"}, nil},
		{"/?service=web", 200, []string{"GO-2024-0001", "GO-2024-0002"}, []string{"GO-2024-0003"}},
		{"/?environment=prod", 200, []string{"GO-2024-0001", "GO-2024-0003", "GO-2024-0002"}, nil},
		{"/?environment=staging&status=linked", 200, []string{"GO-2024-0002"}, []string{"GO-2024-0001<", "GO-2024-0003"}},
		{"/?q=text%2Flang", 200, []string{"GO-2024-0002"}, []string{"GO-2024-0001<", "GO-2024-0003"}},
		{"/?q=cve-2024-0002", 200, []string{"GO-2024-0002"}, []string{"GO-2024-0001<", "GO-2024-0003<"}},
		{"/?q=%25", 200, []string{"No vulnerability matches"}, []string{"GO-2024-0001<"}},
		{"/?status=bogus", 400, []string{"status &#34;bogus&#34;"}, nil},
		{"/?limit=x", 400, []string{"limit must be a number"}, nil},
		{"/vulns/GO-2024-0001", 200, []string{"summary of GO-2024-0001", "go get example.com/m@v1.2.3", "main.serve", "/src/api/main.go:42"}, nil},
		{"/vulns/GO-2024-0001?service=web", 200, []string{"GO-2024-0001 in web", "main.page", "/src/web/main.go:9"}, []string{"main.serve"}},
		{"/vulns/GO-2024-0003", 200, []string{"go get toolchain@go1.21.5"}, nil},
		{"/vulns/GO-2024-0001?environment=staging", 200, []string{"main.page"}, []string{"main.serve"}},
		{"/vulns/GO-0000-0000", 404, []string{"not found"}, nil},
		{"/services", 200, []string{"api", "batch", "web"}, nil},
		{"/services?status=imported", 200, []string{"batch"}, []string{">api<", ">web<"}},
		{"/services/api", 200, []string{`href="/api/v1/export/openvex?service=api"`, `href="/api/v1/export/csv?service=api"`, "b-api-1", "example.com/m v1.2.0", "the whole service api", "GO-2024-0001", "GO-2024-0003"}, []string{"GO-2024-0002"}},
		{"/services/nope", 404, nil, nil},
		{"/agents", 200, []string{"&lt;b&gt;h2&lt;/b&gt;", "bad target &lt;x&gt;"}, []string{"<b>h2"}},
		{"/agents", 200, []string{"h1", "v0.9.0", ">3<", ">12<", "k8s.namespace.name=shop"}, nil},
		{"/static/reach.css", 200, []string{"--reached"}, nil},
		{"/static/reach.js", 200, []string{"sortBy"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, nil, srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.path, code, tt.code, body)
			}
			rest := body
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("GET %s: no %q (in this order among %q)\n%s", tt.path, w, tt.want, body)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.dontWant {
				if strings.Contains(body, w) {
					t.Errorf("GET %s: has %q", tt.path, w)
				}
			}
		})
	}
}

// A symbol named like a script is shown as text, and the pages forbid
// inline scripts anyway.
func TestHostileEscaped(t *testing.T) {
	td, _ := fixture(t)
	srv := serve(t, td)
	for _, path := range []string{"/vulns/GO-2024-0001", "/services/api", "/services/api?q=" + url.QueryEscape(hostile)} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if strings.Contains(body, "<script>window") {
			t.Errorf("GET %s: the hostile symbol is in the page as markup", path)
		}
		if !strings.Contains(body, "&lt;script&gt;window.pwned=1&lt;/script&gt;") {
			t.Errorf("GET %s: the hostile symbol is not in the page as text", path)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q allows inline scripts", path, csp)
		}
	}
}

// The pages stay small: a service page with its 200 findings (the
// default page), the overview of 200 of the vulnerabilities.
func TestPageSize(t *testing.T) {
	td := openSQLite(t)
	td.insert(t, fleetRows(5000, 20, time.Now()))
	srv := serve(t, td)
	for _, path := range []string{"/", "/services/svc-001", "/vulns/GO-2025-0037", "/services"} {
		code, body := get(t, nil, srv.URL+path)
		if code != 200 {
			t.Fatalf("GET %s = %d\n%s", path, code, body)
		}
		if len(body) > 400<<10 {
			t.Errorf("GET %s: %d bytes, want at most 400 KB", path, len(body))
		}
		t.Logf("GET %s: %d KB", path, len(body)>>10)
	}
	_, body := get(t, nil, srv.URL+"/services/svc-001")
	if n := strings.Count(body, `name="finding"`); n != store.DefaultLimit {
		t.Errorf("service page lists %d findings, want a page of %d", n, store.DefaultLimit)
	}
	if !strings.Contains(body, "offset=200") {
		t.Error("service page has no link to the next page")
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// client returns a client with a cookie jar, and the CSRF token of the
// page at path.
func client(t *testing.T, srv *httptest.Server, path string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, body := get(t, c, srv.URL+path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("GET %s: no CSRF token in the page", path)
	}
	return c, m[1]
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestTriageForm(t *testing.T) {
	td, id := fixture(t)
	srv := serve(t, td)
	ctx := context.Background()
	ids := strconv.FormatInt(id, 10)
	c, tok := client(t, srv, "/vulns/GO-2024-0001")
	ret := "/vulns/GO-2024-0001?environment=prod"

	// Refused: no token, a wrong token, a token sent from another site.
	for _, form := range []url.Values{
		{"scope": {"findings"}, "finding": {ids}, "state": {"fixed"}},
		{"scope": {"findings"}, "finding": {ids}, "state": {"fixed"}, "csrf": {tok + "x"}},
	} {
		if resp, body := post(t, c, srv.URL+"/triage", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST /triage %v = %d, want 403\n%s", form, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/triage", strings.NewReader(url.Values{"scope": {"findings"}, "finding": {ids}, "state": {"fixed"}, "csrf": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /triage from another origin = %v, %v; want 403", resp.Status, err)
	}
	req, _ = http.NewRequest("POST", srv.URL+"/triage", strings.NewReader(url.Values{"scope": {"findings"}, "finding": {ids}, "state": {"fixed"}, "csrf": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /triage from a cross-site page = %v, %v; want 403", resp.Status, err)
	}
	// Refused: bad fields.
	for _, form := range []url.Values{
		{"scope": {"findings"}, "state": {"fixed"}},
		{"scope": {"findings"}, "finding": {"x"}, "state": {"fixed"}},
		{"scope": {"findings"}, "finding": {ids}, "state": {"wontfix"}},
		{"scope": {"findings"}, "finding": {ids}, "state": {"not_affected"}},
		{"scope": {"everything"}, "state": {"fixed"}},
		{"scope": {"osv"}, "state": {"fixed"}},
	} {
		form.Set("csrf", tok)
		if resp, body := post(t, c, srv.URL+"/triage", form); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /triage %v = %d, want 400\n%s", form, resp.StatusCode, body)
		}
	}
	if f, err := td.st.Finding(ctx, id); err != nil || f.Triage.State != store.StateAffected {
		t.Fatalf("finding %d after refused forms: %+v, %v; want its affected by reach", id, f, err)
	}

	resp, body := post(t, c, srv.URL+"/triage", url.Values{"csrf": {tok}, "return": {ret}, "scope": {"findings"}, "finding": {ids},
		"state": {"not_affected"}, "justification": {"vulnerable_code_cannot_be_controlled_by_adversary"}, "note": {"input is constant"}, "expires": {"2030-01-31"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != ret {
		t.Fatalf("POST /triage = %d to %q, want 303 to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), ret, body)
	}
	f, err := td.st.Finding(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.Triage.State != store.StateNotAffected || f.Triage.By != "alice" || f.Triage.Note != "input is constant" ||
		f.Triage.Expires == nil || f.Triage.Expires.Format(time.DateOnly) != "2030-01-31" {
		t.Errorf("finding %d triage = %+v", id, f.Triage)
	}
	_, page := get(t, c, srv.URL+ret)
	if !strings.Contains(page, "input is constant") || !strings.Contains(page, "tr-not_affected") {
		t.Error("the vulnerability page does not show the new triage")
	}

	// Bulk: the whole service web; the return address must be local.
	resp, _ = post(t, c, srv.URL+"/triage", url.Values{"csrf": {tok}, "return": {"//evil.example/x"}, "scope": {"service"}, "service": {"web"}, "state": {"under_investigation"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("POST /triage with a foreign return = %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	web, err := td.st.Findings(ctx, store.Filter{Service: "web"})
	if err != nil || len(web) != 2 {
		t.Fatalf("web's findings: %d, %v", len(web), err)
	}
	for _, f := range web {
		if f.Triage.State != store.StateUnderInvestigation {
			t.Errorf("web finding %d (%s): triage %q after the service's bulk triage", f.ID, f.OSV, f.Triage.State)
		}
	}
}

// From a service's page, the vulnerability of a selected finding is
// triaged in every service.
func TestTriageTheirOSVs(t *testing.T) {
	td, _ := fixture(t)
	srv := serve(t, td)
	ctx := context.Background()
	c, tok := client(t, srv, "/services/batch")
	batch, err := td.st.Findings(ctx, store.Filter{Service: "batch"})
	if err != nil || len(batch) != 1 {
		t.Fatalf("batch's findings: %d, %v", len(batch), err)
	}
	resp, body := post(t, c, srv.URL+"/triage", url.Values{"csrf": {tok}, "return": {"/services/batch"}, "scope": {"their_osvs"},
		"finding": {strconv.FormatInt(batch[0].ID, 10)}, "state": {"fixed"}, "note": {"upgraded everywhere"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /triage their_osvs = %d\n%s", resp.StatusCode, body)
	}
	all, err := td.st.Findings(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if fixed := f.Triage.State == store.StateFixed; fixed != (f.OSV == "GO-2024-0002") {
			t.Errorf("%s in %s: triage %q", f.OSV, f.Service, f.Triage.State)
		}
	}
	if _, page := get(t, c, srv.URL+"/services/batch"); !strings.Contains(page, `value="their_osvs"`) {
		t.Error("the service page does not offer the selected findings' vulnerabilities in every service")
	}
}

func TestConfigForm(t *testing.T) {
	td, _ := fixture(t)
	var changed []int64
	mux := http.NewServeMux()
	New(td.st, Options{User: testUser, ConfigChanged: func(_ context.Context, cfg fleet.Config) { changed = append(changed, cfg.Version) }}).Register(mux, testProtect)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	c, tok := client(t, srv, "/config")
	form := func(version, mode string) url.Values {
		return url.Values{"csrf": {tok}, "version": {version}, "paused": {"on"},
			"rule_service": {"api", ""}, "rule_environment": {"prod", ""}, "rule_targets": {"GO-2024-0001, example.com/m/p", " "}, "rule_mode": {mode, "once"}}
	}
	for _, f := range []url.Values{form("0", "sometimes"), {"csrf": {tok}, "version": {"0"}, "rule_service": {"a", "b"}}} {
		if resp, body := post(t, c, srv.URL+"/config", f); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /config %v = %d, want 400\n%s", f, resp.StatusCode, body)
		}
	}
	resp, body := post(t, c, srv.URL+"/config", form("0", "count"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/config?saved=1" {
		t.Fatalf("POST /config = %d to %q, want 303 to /config?saved=1\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	cfg, err := td.st.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fleet.Rule{Service: "api", Environment: "prod", Targets: []string{"GO-2024-0001", "example.com/m/p"}, Count: true}
	if cfg.Version != 1 || !cfg.Paused || cfg.UpdatedBy != "alice" || len(cfg.Rules) != 1 || !reflect.DeepEqual(cfg.Rules[0], want) {
		t.Errorf("stored configuration = %+v, want version 1 paused by alice with %+v", cfg, want)
	}
	if !slices.Equal(changed, []int64{1}) {
		t.Errorf("ConfigChanged called with versions %v, want [1]", changed)
	}
	// A form made from version 0 after version 1 was saved would undo it.
	if resp, body := post(t, c, srv.URL+"/config", form("0", "once")); resp.StatusCode != http.StatusConflict {
		t.Errorf("POST /config of a stale version = %d, want 409\n%s", resp.StatusCode, body)
	}
	if _, page := get(t, c, srv.URL+"/config?saved=1"); !strings.Contains(page, "Saved as version 1") || !strings.Contains(page, `value="GO-2024-0001 example.com/m/p"`) {
		t.Error("the configuration page does not show the saved version and its rule")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/vulns/X?service=a": "/vulns/X?service=a",
		"//evil.example":     "/",
		"/\\evil.example":    "/",
		"https://evil":       "/",
		"javascript:alert()": "/",
		"":                   "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
