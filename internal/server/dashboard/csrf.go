package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
)

// Cross-site request forgery. The forms are behind the standard
// library's http.CrossOriginProtection (the browser's Sec-Fetch-Site and
// Origin headers), and every form that changes something carries a token
// that must equal the browser's csrfCookie (a double-submit token).
// Another site can make the browser send a POST with the cookie, but it
// can neither read the cookie nor the page that holds the token, so it
// cannot put the token in the form. The cookie is also SameSite=Strict
// (a cross-site POST does not carry it at all) and HttpOnly, and a POST
// whose Origin header names another host is refused outright. The token
// is random per browser and does not depend on the login, so the check
// works with whatever protect function the server authenticates with.
const (
	csrfCookie = "reach_csrf"
	csrfField  = "csrf"
)

// csrfToken returns the browser's token, setting the cookie when the
// request has none (a first visit).
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return tok
}

// checkCSRF parses the POSTed form (up to maxForm bytes) and checks its
// token; the error is the 403 to answer.
func checkCSRF(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read: " + err.Error())
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return &httpError{http.StatusForbidden, "the form was sent from another site (Origin " + o + "): nothing was changed"}
		}
	}
	c, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get(csrfField)
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		return &httpError{http.StatusForbidden, "the form's security token is missing or stale: reload the page and send it again"}
	}
	return nil
}

// maxForm bounds a POSTed form.
const maxForm = 256 << 10
