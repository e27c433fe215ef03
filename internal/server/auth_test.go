package server

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// adminEndpoints are the admin API's requests, each with a body that
// would be valid.
var adminEndpoints = []struct{ method, path, body string }{
	{"GET", "/api/v1/overview", ""},
	{"GET", "/api/v1/findings", ""},
	{"GET", "/api/v1/findings/1", ""},
	{"GET", "/api/v1/vulns/GO-2021-0113", ""},
	{"GET", "/api/v1/services", ""},
	{"GET", "/api/v1/services/svc", ""},
	{"GET", "/api/v1/agents", ""},
	{"POST", "/api/v1/triage", `{"osv":"GO-2021-0113","state":"under_investigation"}`},
	{"GET", "/api/v1/config", ""},
	{"PUT", "/api/v1/config", `{"rules":[{"targets":["*"]}]}`},
	{"GET", "/api/v1/config/agents", ""},
	{"POST", "/api/v1/enrol-tokens", `{"name":"x"}`},
	{"GET", "/dash", ""}, // mounted
}

// whoami is a mount that answers the administrator's name.
func whoami(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
	mux.Handle("GET /dash", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("admin=" + AdminName(r.Context())))
	})))
	mux.Handle("POST /dash", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("posted by " + AdminName(r.Context())))
	})))
}

// TestTokensKeepToTheirAPI: agent and enrolment tokens never work on
// the admin API, and the admin token never on the agent API; nothing is
// stored by any such request.
func TestTokensKeepToTheirAPI(t *testing.T) {
	f := newFixture(t, "", Options{Mounts: []Mount{whoami}})
	before := rowCounts(t, f.dsn)
	for _, e := range adminEndpoints {
		for _, tok := range []struct{ name, token string }{
			{"none", ""}, {"agent", f.agent.Token}, {"enrolment", f.enrol}, {"garbage", "reach_admin_0000"},
		} {
			code, body := do(t, e.method, f.url+e.path, tok.token, e.body)
			if code != 401 {
				t.Errorf("%s %s with %s token: %d %.200s, want 401", e.method, e.path, tok.name, code, body)
			}
		}
	}
	if after := rowCounts(t, f.dsn); !maps.Equal(before, after) {
		t.Errorf("unauthorized admin requests changed the store: %v, then %v", before, after)
	}
	for _, p := range []struct{ method, path string }{{"POST", fleet.PathReport}, {"GET", fleet.PathConfig}} {
		if code, body := do(t, p.method, f.url+p.path, f.admin, testBatch(f.agent.AgentID, 1, "i", 1)); code != 401 {
			t.Errorf("%s %s with the admin token: %d %s, want 401", p.method, p.path, code, body)
		}
	}
	if code, body := do(t, "GET", f.url+"/dash", f.admin, nil); code != 200 || string(body) != "admin=test-admin" {
		t.Errorf("mounted page with the admin token: %d %q, want 200 admin=test-admin", code, body)
	}
}

func TestAdminAPI(t *testing.T) {
	f := newFixture(t, "", Options{})
	if code, body := do(t, "POST", f.url+fleet.PathReport, f.agent.Token, testBatch(f.agent.AgentID, 1, "i1", 5)); code != 200 {
		t.Fatalf("report: %d %s", code, body)
	}
	// Configuration: set, read back, by whom.
	code, body := do(t, "PUT", f.url+"/api/v1/config", f.admin, fleet.Config{Rules: []fleet.Rule{{Service: "svc", Targets: []string{"GO-2021-0113"}, Count: true}}})
	if code != 200 {
		t.Fatalf("put config: %d %s", code, body)
	}
	var cfg fleet.Config
	json.Unmarshal(body, &cfg)
	if cfg.Version < 1 || cfg.UpdatedBy != "test-admin" || len(cfg.Rules) != 1 {
		t.Errorf("put config answered %+v, want version >= 1 by test-admin with the rule", cfg)
	}
	code, body = do(t, "GET", f.url+"/api/v1/config", f.admin, nil)
	var got fleet.Config
	if code != 200 || json.Unmarshal(body, &got) != nil || got.Version != cfg.Version {
		t.Errorf("get config: %d %s, want version %d", code, body, cfg.Version)
	}
	// A stale version is a conflict.
	if code, body := do(t, "PUT", f.url+"/api/v1/config", f.admin, fleet.Config{Version: cfg.Version + 5, Paused: true}); code != 409 {
		t.Errorf("put with a stale version: %d %s, want 409", code, body)
	}
	// Triage, recorded with the administrator's name.
	code, body = do(t, "POST", f.url+"/api/v1/triage", f.admin, TriageBody{OSV: "GO-2021-0113", State: "under_investigation", Note: "looking"})
	if code != 200 || !strings.Contains(string(body), `"changed":`) {
		t.Errorf("triage: %d %s", code, body)
	}
	if n := countRows(t, f.dsn, "triage_log"); n == 0 {
		t.Errorf("triage not logged")
	}
	// Enrolment token through the API enrols an agent.
	code, body = do(t, "POST", f.url+"/api/v1/enrol-tokens", f.admin, EnrolTokenBody{Name: "api"})
	var et EnrolTokenResult
	if code != 201 || json.Unmarshal(body, &et) != nil || et.Token == "" {
		t.Fatalf("enrol token: %d %s", code, body)
	}
	if code, body := do(t, "POST", f.url+fleet.PathEnrol, et.Token, fleet.EnrolRequest{Hostname: "h2"}); code != 200 {
		t.Errorf("enrol with the API's token: %d %s", code, body)
	}

	before := rowCounts(t, f.dsn)
	for _, tt := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"PUT", "/api/v1/config", `{"rules":[{"targets":["*"]}],"pausd":true}`, 400, "pausd"},
		{"PUT", "/api/v1/config", `{"rules":[{"targets":["not a selector!"]}]}`, 400, "rule 1"},
		{"PUT", "/api/v1/config", `{"rules":`, 400, "malformed JSON"},
		{"PUT", "/api/v1/config", `{"rules":[]}` + strings.Repeat(" ", adminBytes), 413, ""},
		{"POST", "/api/v1/triage", `{"state":"affected"}`, 400, "triage of nothing"},
		{"POST", "/api/v1/triage", `{"osv":"GO-2021-0113","state":"affected","by":"someone else"}`, 400, `unknown field \"by\"`},
		{"POST", "/api/v1/triage", `{"osv":"GO-2021-0113","state":"not_affected"}`, 400, ""}, // needs a justification
		{"POST", "/api/v1/triage", `{"osv":"GO-2021-0113","state":"bogus"}`, 400, ""},
		{"POST", "/api/v1/enrol-tokens", `{}`, 400, "without a name"},
		{"POST", "/api/v1/enrol-tokens", `{"name":"x","expires":"2001-01-01T00:00:00Z"}`, 400, "in the past"},
		{"GET", "/api/v1/findings/abc", "", 400, "not a positive whole number"},
		{"GET", "/api/v1/findings/-3", "", 400, "not a positive whole number"},
		{"GET", "/api/v1/findings?status=bogus", "", 400, "unknown status"},
		{"GET", "/api/v1/findings?triage=bogus", "", 400, "triage"},
		{"GET", "/api/v1/findings?limit=100000000", "", 400, "at most"},
		{"GET", "/api/v1/findings?offset=-1", "", 400, "at least 0"},
		{"DELETE", "/api/v1/config", "", 405, ""},
	} {
		code, body := do(t, tt.method, f.url+tt.path, f.admin, tt.body)
		if code != tt.code || !strings.Contains(string(body), tt.says) {
			t.Errorf("%s %s %.60s: %d %.300s, want %d saying %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.says)
		}
	}
	if after := rowCounts(t, f.dsn); !maps.Equal(before, after) {
		t.Errorf("rejected admin requests changed the store: %v, then %v", before, after)
	}
	if code, body := do(t, "GET", f.url+"/api/v1/findings/999999", f.admin, nil); code != 404 {
		t.Errorf("a finding that does not exist: %d %s, want 404", code, body)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, "", Options{Mounts: []Mount{whoami}})
	jar, _ := cookiejar.New(nil)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect}
	html := http.Header{"Accept": {"text/html,application/xhtml+xml"}}

	// A browser is sent to the login page, and back after.
	resp := request(t, c, "GET", f.url+"/dash?service=a%20b", "", nil, html)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/login?next="+url.QueryEscape("/dash?service=a%20b") {
		t.Fatalf("page without session: %d to %q, want 303 to /login?next=...", resp.StatusCode, loc)
	}
	// The API says 401, as JSON.
	resp = request(t, c, "GET", f.url+"/api/v1/agents", "", nil, html)
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("API without session: %d %s, want 401 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	code, body := do(t, "GET", f.url+"/login?next=/dash", "", nil)
	if code != 200 || !strings.Contains(string(body), `name="next" value="/dash"`) || !strings.Contains(string(body), `type="password"`) {
		t.Errorf("login page: %d %s", code, body)
	}

	form := func(token, next string) string {
		return url.Values{"token": {token}, "next": {next}}.Encode()
	}
	formHeader := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, bad := range []string{"", f.agent.Token, f.enrol, "nope"} {
		resp = request(t, c, "POST", f.url+"/login", "", form(bad, "/dash"), formHeader)
		resp.Body.Close()
		if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("login with %.12q: %d, cookies %v; want 401 and none", bad, resp.StatusCode, resp.Cookies())
		}
	}
	// Open redirects are refused: next goes to this server only.
	for next, want := range map[string]string{"/dash": "/dash", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/"} {
		resp = request(t, c, "POST", f.url+"/login", "", form(f.admin, next), formHeader)
		resp.Body.Close()
		if resp.StatusCode != 303 || resp.Header.Get("Location") != want {
			t.Errorf("login with next %q: %d to %q, want 303 to %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure || session.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure without TLS, with an expiry", session)
	}
	if strings.Contains(session.Value, f.admin) {
		t.Errorf("the session cookie holds the admin token")
	}
	code, body = doClient(t, c, "GET", f.url+"/dash", nil)
	if code != 200 || string(body) != "admin=test-admin" {
		t.Errorf("page with session: %d %q", code, body)
	}
	if code, _ := doClient(t, c, "GET", f.url+"/api/v1/config", nil); code != 200 {
		t.Errorf("API with session: %d", code)
	}
	// The session is good on another server on the same store (the key is
	// the store's).
	_, url2 := startServer(t, f.store, Options{Mounts: []Mount{whoami}})
	if code, body := doCookie(t, "GET", url2+"/dash", session); code != 200 {
		t.Errorf("session on a second server: %d %s", code, body)
	}
	// A cross-site POST with the cookie is refused.
	resp = request(t, c, "POST", f.url+"/dash", "", "", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-site POST with session: %d, want 403", resp.StatusCode)
	}
	if code, body := doClient(t, c, "POST", f.url+"/dash", http.Header{"Sec-Fetch-Site": {"same-origin"}}); code != 200 || string(body) != "posted by test-admin" {
		t.Errorf("same-origin POST with session: %d %s", code, body)
	}

	// Forged, tampered and expired cookies are no session.
	expired, err := f.srv.newSession(context.Background(), "test-admin", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := f.srv.newSession(context.Background(), "test-admin", time.Now().Add(time.Hour))
	parts := strings.Split(other, ".")
	forgedName := strings.Join([]string{parts[0], parts[1], "bWFsbG9yeQ", parts[3]}, ".")
	longer := strings.Join([]string{parts[0], "99999999999", parts[2], parts[3]}, ".")
	for name, v := range map[string]string{
		"expired": expired, "other name": forgedName, "longer": longer, "garbage": "x.y.z",
		"empty": "", "no mac": strings.Join(parts[:3], "."),
	} {
		if code, _ := doCookie(t, "GET", f.url+"/api/v1/config", &http.Cookie{Name: sessionCookie, Value: v}); code != 401 {
			t.Errorf("%s session: %d, want 401", name, code)
		}
	}

	// Logout ends it in the browser.
	resp = request(t, c, "POST", f.url+"/logout", "", "", nil)
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if code, _ := doClient(t, c, "GET", f.url+"/api/v1/config", nil); code != 401 {
		t.Errorf("after logout: %d, want 401", code)
	}
}

func doClient(t *testing.T, c *http.Client, method, url string, h http.Header) (int, []byte) {
	t.Helper()
	resp := request(t, c, method, url, "", nil, h)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func doCookie(t *testing.T, method, url string, c *http.Cookie) (int, []byte) {
	t.Helper()
	return doClient(t, http.DefaultClient, method, url, http.Header{"Cookie": {c.String()}})
}

// FuzzSession: no cookie value panics the check, and only values made
// with the key verify.
func FuzzSession(f *testing.F) {
	s := &Server{sessionSecret: []byte("0123456789abcdef0123456789abcdef")}
	good, _ := s.newSession(context.Background(), "admin", time.Now().Add(time.Hour))
	f.Add(good)
	f.Add("v1.1.YQ.x")
	f.Add("....")
	f.Fuzz(func(t *testing.T, v string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			return
		}
		name, err := s.session(r)
		if err == nil && c.Value != good {
			t.Errorf("cookie %q verified as %q", c.Value, name)
		}
	})
}
