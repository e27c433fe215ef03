package dashboard

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/server"
	"github.com/reach-sca/reach/internal/server/store"
)

// TestBehindServer mounts the dashboard on the real server, as reach
// server does: a browser is sent to the login page, logs in with an admin
// token, sees the pages and triages as the token's name.
func TestBehindServer(t *testing.T) {
	td, id := fixture(t)
	ctx := context.Background()
	dash := New(td.st, Options{
		User:          func(r *http.Request) string { return server.AdminName(r.Context()) },
		ConfigChanged: server.ConfigChanged,
	})
	srv, err := server.New(ctx, server.Options{Store: td.st, Mounts: []server.Mount{dash.Register}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	token, err := td.st.CreateAdminToken(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	req, _ := http.NewRequest("GET", ts.URL+"/vulns/GO-2024-0001", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("a page without a login ends at %s, want /login", resp.Request.URL)
	}
	if resp, err := http.Get(ts.URL + "/static/reach.css"); err != nil || resp.StatusCode != 200 {
		t.Errorf("the stylesheet without a login: %v, %v; want 200", resp.Status, err)
	}

	resp, err = c.PostForm(ts.URL+"/login", url.Values{"token": {token}, "next": {"/vulns/GO-2024-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/vulns/GO-2024-0001" {
		t.Fatalf("after login: %s at %s, want the vulnerability's page", resp.Status, resp.Request.URL)
	}
	code, page := get(t, c, ts.URL+"/vulns/GO-2024-0001")
	m := csrfRE.FindStringSubmatch(page)
	if code != 200 || m == nil || !strings.Contains(page, ">bob<") {
		t.Fatalf("vulnerability page: %d, token %v, user bob shown %v", code, m != nil, strings.Contains(page, ">bob<"))
	}
	resp, err = c.PostForm(ts.URL+"/triage", url.Values{"csrf": {m[1]}, "return": {"/vulns/GO-2024-0001"}, "scope": {"findings"},
		"finding": {strconv.FormatInt(id, 10)}, "state": {"under_investigation"}, "note": {"looking"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/vulns/GO-2024-0001" {
		t.Errorf("after triage: %s at %s, want the vulnerability's page", resp.Status, resp.Request.URL)
	}
	f, err := td.st.Finding(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.Triage.State != store.StateUnderInvestigation || f.Triage.By != "bob" {
		t.Errorf("triage through the server = %+v, want under_investigation by bob", f.Triage)
	}
}
