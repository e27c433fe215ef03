package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// Token prefixes: a token says what it is to whoever finds it (in a
// configuration file, or a secret scanner).
const (
	EnrolTokenPrefix = "reach_enrol_"
	AgentTokenPrefix = "reach_agent_"
	AdminTokenPrefix = "reach_admin_"
)

// newToken is prefix and 32 random bytes, base64url.
func newToken(prefix string) string {
	return prefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// randomBytes returns n random bytes. crypto/rand's Read never fails (it
// crashes the program when the system cannot give randomness).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// hashToken is what the store keeps of a token: its SHA-256 in hex. The
// tokens are random, 256 bits: a plain hash is enough (nothing to guess),
// and looking it up by hash keeps the comparison out of the reach of
// timing.
func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// CreateEnrolToken makes an enrolment token; only its hash is kept.
// expires nil: it does not expire.
func (s *Store) CreateEnrolToken(ctx context.Context, name string, expires *time.Time) (token string, err error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	now := time.Now()
	var exp any
	if expires != nil {
		if !expires.After(now) {
			return "", fmt.Errorf("%w: enrolment token %s: expiry %s is in the past", ErrInvalid, quote(name), expires.Format(time.RFC3339))
		}
		exp = expires.UnixNano()
	}
	token = newToken(EnrolTokenPrefix)
	_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO enrol_tokens (name, token_hash, created, expires) VALUES (?, ?, ?, ?)`),
		name, hashToken(token), now.UnixNano(), exp)
	if err != nil {
		return "", fmt.Errorf("create enrolment token %s: %w", quote(name), s.wrapUnavailable(err))
	}
	return token, nil
}

// CreateAdminToken makes an admin token; only its hash is kept.
func (s *Store) CreateAdminToken(ctx context.Context, name string) (token string, err error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	token = newToken(AdminTokenPrefix)
	_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO admin_tokens (name, token_hash, created) VALUES (?, ?, ?)`),
		name, hashToken(token), time.Now().UnixNano())
	if err != nil {
		return "", fmt.Errorf("create admin token %s: %w", quote(name), s.wrapUnavailable(err))
	}
	return token, nil
}

// checkName checks the name of a token.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: a token needs a name", ErrInvalid)
	}
	if len(name) > 200 || hasControl(name) {
		return fmt.Errorf("%w: token name %s: at most 200 bytes, no control characters", ErrInvalid, quote(name))
	}
	return checkString("name", name)
}

// hasControl reports whether s has a control character.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) >= 0
}

// AdminToken reports the name of the admin token, or ErrUnauthorized.
func (s *Store) AdminToken(ctx context.Context, token string) (name string, err error) {
	err = s.db.QueryRowContext(ctx, s.rebind(`SELECT name FROM admin_tokens WHERE token_hash = ? AND revoked IS NULL`), hashToken(token)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("admin token: %w", s.wrapUnavailable(err))
	}
	return name, nil
}

// Secret returns the named server secret (32 bytes), creating it at
// random the first time: the same value for every server on the database,
// whichever creates it.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	value := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	if _, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, value); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, s.wrapUnavailable(err))
	}
	if err := s.db.QueryRowContext(ctx, s.rebind(`SELECT value FROM secrets WHERE name = ?`), name).Scan(&value); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, s.wrapUnavailable(err))
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return b, nil
}

// Enrol makes a new agent with an enrolment token that exists, is not
// revoked and has not expired (else ErrUnauthorized), and counts the use.
func (s *Store) Enrol(ctx context.Context, enrolToken string, req fleet.EnrolRequest) (fleet.EnrolResponse, error) {
	if err := checkStrings("hostname", req.Hostname, "reach_version", req.ReachVersion); err != nil {
		return fleet.EnrolResponse{}, fmt.Errorf("%w: enrol: %v", ErrInvalid, err)
	}
	if err := checkLabels(req.Labels); err != nil {
		return fleet.EnrolResponse{}, fmt.Errorf("%w: enrol: %v", ErrInvalid, err)
	}
	labels, err := json.Marshal(req.Labels)
	if err != nil || req.Labels == nil {
		labels = []byte("{}")
	}
	resp := fleet.EnrolResponse{
		AgentID: "agt_" + hex.EncodeToString(randomBytes(12)),
		Token:   newToken(AgentTokenPrefix),
	}
	now := time.Now().UnixNano()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var tokenID int64
		err := tx.QueryRowContext(ctx, s.rebind(`UPDATE enrol_tokens SET uses = uses + 1
			WHERE token_hash = ? AND revoked IS NULL AND (expires IS NULL OR expires > ?) RETURNING id`),
			hashToken(enrolToken), now).Scan(&tokenID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnauthorized
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO agents (id, token_hash, hostname, reach_version, labels, enrol_token_id, created, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			resp.AgentID, hashToken(resp.Token), req.Hostname, req.ReachVersion, string(labels), tokenID, now, now)
		return err
	})
	if errors.Is(err, ErrUnauthorized) {
		return fleet.EnrolResponse{}, fmt.Errorf("enrol: %w: the enrolment token is unknown, revoked or expired", ErrUnauthorized)
	}
	if err != nil {
		return fleet.EnrolResponse{}, fmt.Errorf("enrol: %w", err)
	}
	return resp, nil
}

// RevokeEnrolToken revokes an enrolment token: no agent can enrol with it
// any more; the agents enrolled with it keep their own tokens.
func (s *Store) RevokeEnrolToken(ctx context.Context, token string) error {
	return s.revoke(ctx, `UPDATE enrol_tokens SET revoked = ? WHERE token_hash = ? AND revoked IS NULL`, hashToken(token))
}

// RevokeAgent revokes an agent: its token no longer works.
func (s *Store) RevokeAgent(ctx context.Context, agentID string) error {
	return s.revoke(ctx, `UPDATE agents SET revoked = ? WHERE id = ? AND revoked IS NULL`, agentID)
}

func (s *Store) revoke(ctx context.Context, q, key string) error {
	r, err := s.db.ExecContext(ctx, s.rebind(q), time.Now().UnixNano(), key)
	if err != nil {
		return fmt.Errorf("revoke: %w", s.wrapUnavailable(err))
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("revoke: %w", err)
	} else if n == 0 {
		return fmt.Errorf("revoke: %w", ErrNotFound)
	}
	return nil
}

// AgentByToken returns the agent whose token this is, or ErrUnauthorized
// (also for a revoked agent).
func (s *Store) AgentByToken(ctx context.Context, token string) (*Agent, error) {
	a, err := s.scanAgent(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+agentColumns+` FROM agents WHERE token_hash = ? AND revoked IS NULL`), hashToken(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("agent token: %w", s.wrapUnavailable(err))
	}
	return a, nil
}

// agentColumns are the columns scanAgent reads.
const agentColumns = `id, hostname, reach_version, labels, created, last_seen, last_seq, processes, probes,
	applied_version, applied_error, applied_at, revoked`

func (s *Store) scanAgent(row interface{ Scan(...any) error }) (*Agent, error) {
	var a Agent
	var labels string
	var created, lastSeen, lastSeq, processes, probes int64
	var appliedAt, revoked sql.NullInt64
	if err := row.Scan(&a.ID, &a.Hostname, &a.ReachVersion, &labels, &created, &lastSeen, &lastSeq,
		&processes, &probes, &a.AppliedVersion, &a.AppliedError, &appliedAt, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
		return nil, fmt.Errorf("agent %s: labels: %w", a.ID, err)
	}
	a.Created, a.LastSeen = time.Unix(0, created), time.Unix(0, lastSeen)
	a.LastSeq, a.Processes, a.Probes = uint64(lastSeq), int(processes), int(probes)
	if appliedAt.Valid {
		t := time.Unix(0, appliedAt.Int64)
		a.AppliedAt = &t
	}
	a.Revoked = revoked.Valid
	return &a, nil
}
