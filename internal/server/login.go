package server

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/server/store"
)

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reach server: log in</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f6f7f9;color:#1d2330;display:flex;justify-content:center;padding-top:12vh;margin:0}
form{background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:2rem;width:24rem;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:1.25rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #b9c0cc;border-radius:4px;font:inherit}
button{margin-top:1rem;padding:.5rem 1.25rem;border:0;border-radius:4px;background:#2456c7;color:#fff;font:inherit;cursor:pointer}
.err{color:#b3261e;margin:.5rem 0 0}
p.hint{color:#5b6472;font-size:.875rem}
</style></head>
<body><form method="post" action="/login">
<h1>reach server</h1>
<label for="token">Admin token</label>
<input type="password" id="token" name="token" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{{.Next}}">
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<p class="hint">The first start wrote one to the data directory's admin-token file; <code>reach server admin-token</code> makes another.</p>
<button type="submit">Log in</button>
</form></body></html>
`))

type loginData struct {
	Next, Error string
}

// safeNext returns next when it is a path on this server, else "/": the
// login page sends a browser nowhere else.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\\") || len(next) > 2048 {
		return "/"
	}
	return next
}

func renderLogin(w http.ResponseWriter, code int, d loginData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(code)
	loginTmpl.Execute(w, d)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	renderLogin(w, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// loginFormBytes bounds the login form.
const loginFormBytes = 8 << 10

// login checks the admin token of the form and sets the session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.rateLimit(w, addrKey(r)) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, loginFormBytes)
	if err := r.ParseForm(); err != nil {
		renderLogin(w, http.StatusBadRequest, loginData{Next: "/", Error: "The form could not be read."})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" || len(token) > maxTokenLen {
		renderLogin(w, http.StatusUnauthorized, loginData{Next: next, Error: "That is not an admin token."})
		return
	}
	name, err := s.store.AdminToken(r.Context(), token)
	if errors.Is(err, store.ErrUnauthorized) {
		renderLogin(w, http.StatusUnauthorized, loginData{Next: next, Error: "That is not an admin token."})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	expires := time.Now().Add(s.opts.SessionTTL)
	value, err := s.newSession(r.Context(), name, expires)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(s.opts.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout removes the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
