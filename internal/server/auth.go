package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// bearer returns the token of an "Authorization: Bearer TOKEN" header,
// or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// maxTokenLen bounds a token presented: longer is no token of ours, and
// is not hashed or looked up.
const maxTokenLen = 256

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="reach"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// agentHandler serves a request of an authenticated agent.
type agentHandler func(w http.ResponseWriter, r *http.Request, agent *store.Agent)

// agentOnly authenticates the agent by its token, then rate-limits it.
// Admin and enrolment tokens are no agent's: 401.
func (s *Server) agentOnly(h agentHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent, ok := s.authAgent(w, r)
		if !ok {
			return
		}
		h(w, r, agent)
	})
}

// authAgent returns the agent r's token is of, after its rate limit; or
// answers the request and returns false.
func (s *Server) authAgent(w http.ResponseWriter, r *http.Request) (*store.Agent, bool) {
	token := bearer(r)
	if token == "" || len(token) > maxTokenLen {
		unauthorized(w, "no agent token: send Authorization: Bearer TOKEN with the token enrolment gave")
		return nil, false
	}
	agent, err := s.store.AgentByToken(r.Context(), token)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if agent.Revoked {
		unauthorized(w, "this agent's token was revoked")
		return nil, false
	}
	if !s.rateLimit(w, "agent "+agent.ID) {
		return nil, false
	}
	return agent, true
}

type adminKey struct{}

type hubKey struct{}

// ConfigChanged tells the server handling a protected request that the
// configuration changed (a page that called store.SetConfig itself), so
// that it wakes its agents' long polls at once; other servers on the
// database learn of it by polling. It does nothing outside a protected
// handler.
func ConfigChanged(ctx context.Context, cfg fleet.Config) {
	if h, ok := ctx.Value(hubKey{}).(*hub); ok {
		h.set(cfg)
	}
}

// asAdmin returns r's context for a protected handler: the
// administrator's name, and the hub for ConfigChanged.
func (s *Server) asAdmin(r *http.Request, name string) *http.Request {
	ctx := context.WithValue(r.Context(), adminKey{}, name)
	return r.WithContext(context.WithValue(ctx, hubKey{}, s.hub))
}

// AdminName returns the name of the administrator a protected request is
// from (the admin token's name), for the records triage and configuration
// keep; "" outside a protected handler.
func AdminName(ctx context.Context) string {
	name, _ := ctx.Value(adminKey{}).(string)
	return name
}

// sessionCookie is the dashboard's session cookie.
const sessionCookie = "reach_session"

// protect lets through the requests of an administrator: an admin token
// (Authorization: Bearer), or a valid session cookie from /login. Others
// get 401 as JSON, or, for a browser asking for a page, a redirect to
// /login that comes back. Requests made with the cookie from another
// site's page (cross-origin, by Sec-Fetch-Site or Origin) are refused.
func (s *Server) protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token := bearer(r); token != "" {
			if len(token) > maxTokenLen {
				unauthorized(w, "not an admin token")
				return
			}
			name, err := s.store.AdminToken(r.Context(), token)
			if errors.Is(err, store.ErrUnauthorized) {
				unauthorized(w, "not an admin token: agent and enrolment tokens do not work here")
				return
			}
			if err != nil {
				s.fail(w, r, err)
				return
			}
			h.ServeHTTP(w, s.asAdmin(r, name))
			return
		}
		name, err := s.session(r)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				s.fail(w, r, err) // the session key could not be read
				return
			}
			if wantsPage(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			unauthorized(w, "log in: an admin token as Authorization: Bearer TOKEN, or a session from /login")
			return
		}
		h.ServeHTTP(w, s.asAdmin(r, name))
	})
	return cop.Handler(inner)
}

// wantsPage reports whether r is a browser's request for a page (not the
// API's).
func wantsPage(r *http.Request) bool {
	return r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// secret returns the key that signs sessions: the store's, the same for
// every server on the database. It is read once, then kept.
func (s *Server) secret(ctx context.Context) ([]byte, error) {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	if s.sessionSecret != nil {
		return s.sessionSecret, nil
	}
	key, err := s.store.Secret(ctx, "session")
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("session key: %d bytes, too short", len(key))
	}
	s.sessionSecret = key
	return key, nil
}

// A session cookie is "v1.EXPIRES.NAME.MAC": EXPIRES in Unix seconds, NAME
// the admin token's name in unpadded base64url, MAC the HMAC-SHA256 of
// what precedes it under the session key, base64url too. Sessions are not
// stored: any server on the database checks one; they last until they
// expire (revoking the admin token does not end them; changing the
// session secret in the store ends them all).
func sessionMAC(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession returns the cookie value of a session for name, valid until
// expires.
func (s *Server) newSession(ctx context.Context, name string, expires time.Time) (string, error) {
	key, err := s.secret(ctx)
	if err != nil {
		return "", err
	}
	payload := "v1." + strconv.FormatInt(expires.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(name))
	return payload + "." + sessionMAC(key, payload), nil
}

var errNoSession = errors.New("no valid session")

// session returns the administrator's name of r's valid session cookie.
func (s *Server) session(r *http.Request) (string, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 1024 {
		return "", errNoSession
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return "", errNoSession
	}
	payload, mac := c.Value[:i], c.Value[i+1:]
	key, err := s.secret(r.Context())
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(mac), []byte(sessionMAC(key, payload))) {
		return "", errNoSession
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", errNoSession
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() >= exp {
		return "", errNoSession
	}
	name, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", errNoSession
	}
	return string(name), nil
}
