package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

func TestEnrol(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		good, err := s.CreateEnrolToken(ctx, "good", nil)
		if err != nil {
			t.Fatal(err)
		}
		expired, err := s.CreateEnrolToken(ctx, "expired", new(time.Now().Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(s.rebind(`UPDATE enrol_tokens SET expires = ? WHERE name = 'expired'`), time.Now().Add(-time.Second).UnixNano()); err != nil {
			t.Fatal(err)
		}
		revoked, err := s.CreateEnrolToken(ctx, "revoked", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeEnrolToken(ctx, revoked); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateEnrolToken(ctx, "past", new(time.Now().Add(-time.Hour))); !errors.Is(err, ErrInvalid) {
			t.Errorf("enrolment token expiring in the past: %v, want ErrInvalid", err)
		}
		admin, err := s.CreateAdminToken(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		req := fleet.EnrolRequest{Hostname: "h1", ReachVersion: "v1", Labels: map[string]string{"k8s.namespace.name": "prod"}}
		for _, tt := range []struct{ name, token string }{
			{"expired", expired}, {"revoked", revoked}, {"unknown", EnrolTokenPrefix + "nope"},
			{"admin token", admin}, {"empty", ""},
		} {
			if _, err := s.Enrol(ctx, tt.token, req); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("enrol with the %s token: %v, want ErrUnauthorized", tt.name, err)
			}
		}
		if _, err := s.Enrol(ctx, good, fleet.EnrolRequest{Hostname: "h\x00"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("enrol with a NUL in the hostname: %v, want ErrInvalid", err)
		}
		var agents []fleet.EnrolResponse
		for range 2 {
			resp, err := s.Enrol(ctx, good, req)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(resp.AgentID, "agt_") || !strings.HasPrefix(resp.Token, AgentTokenPrefix) || len(resp.Token) < len(AgentTokenPrefix)+43 {
				t.Errorf("enrolled %+v: want agt_ ID and a reach_agent_ token of 32 random bytes", resp)
			}
			agents = append(agents, resp)
		}
		if agents[0].AgentID == agents[1].AgentID || agents[0].Token == agents[1].Token {
			t.Errorf("two enrolments gave the same ID or token: %+v", agents)
		}
		if n := count(t, s, "enrol_tokens", "name = 'good' AND uses = 2"); n != 1 {
			t.Errorf("the good token's uses are not 2")
		}
		a, err := s.AgentByToken(ctx, agents[0].Token)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != agents[0].AgentID || a.Hostname != "h1" || a.Labels["k8s.namespace.name"] != "prod" || a.Revoked {
			t.Errorf("AgentByToken = %+v", a)
		}
		for _, bad := range []string{agents[0].Token + "x", "", admin, good} {
			if _, err := s.AgentByToken(ctx, bad); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("AgentByToken(another token): %v, want ErrUnauthorized", err)
			}
		}
		if err := s.RevokeAgent(ctx, agents[0].AgentID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AgentByToken(ctx, agents[0].Token); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("AgentByToken of a revoked agent: %v, want ErrUnauthorized", err)
		}
		if _, err := s.AgentByToken(ctx, agents[1].Token); err != nil {
			t.Errorf("the other agent: %v", err)
		}
		if name, err := s.AdminToken(ctx, admin); err != nil || name != "alice" {
			t.Errorf("AdminToken = %q, %v; want alice", name, err)
		}
		for _, bad := range []string{agents[1].Token, good, admin[:len(admin)-1]} {
			if _, err := s.AdminToken(ctx, bad); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("AdminToken(not an admin token): %v, want ErrUnauthorized", err)
			}
		}
	})
}

// TestNoRawTokens looks for every token the store made, whole or its
// random part, in every column of every table.
func TestNoRawTokens(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, Options{Sinks: []string{"otlp"}}, func(t *testing.T, s *Store) {
		enrolTok, err := s.CreateEnrolToken(ctx, "e", nil)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := s.CreateAdminToken(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		ag, err := s.Enrol(ctx, enrolTok, fleet.EnrolRequest{Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 1, "i", "h", "api", reached("GO-1", "Parse", t0)))
		secret, err := s.Secret(ctx, "session")
		if err != nil {
			t.Fatal(err)
		}
		tokens := []string{enrolTok, admin, ag.Token}
		for _, tok := range tokens {
			if len(tok) != len(EnrolTokenPrefix)+43 || len(EnrolTokenPrefix) != len(AgentTokenPrefix) || len(AgentTokenPrefix) != len(AdminTokenPrefix) {
				t.Fatalf("token %d bytes long, want a 12-byte prefix and 43 of base64url", len(tok))
			}
		}
		q := `SELECT name FROM sqlite_master WHERE type = 'table'`
		if s.Postgres() {
			q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
		}
		var tables []string
		rows, err := s.db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			rows.Scan(&name)
			tables = append(tables, name)
		}
		rows.Close()
		if len(tables) < 10 {
			t.Fatalf("found tables %v, want them all", tables)
		}
		values := 0
		for _, table := range tables {
			rows, err := s.db.Query("SELECT * FROM " + table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]sql.RawBytes, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					values++
					for _, tok := range tokens {
						random := tok[len(EnrolTokenPrefix):] // base64url has _ too: not after the last _
						if bytes.Contains(v, []byte(random)) {
							t.Errorf("%s.%s holds a raw token", table, cols[i])
						}
					}
				}
			}
			rows.Close()
		}
		if values < 50 {
			t.Errorf("read %d values, want every column of every row", values)
		}
		if len(secret) != 32 {
			t.Errorf("secret of %d bytes, want 32", len(secret))
		}
	})
}

// TestSecret gets one secret from many goroutines on two stores of one
// database: they all get the same value.
func TestSecret(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			stores := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					v, err := stores[i%2].Secret(ctx, "session")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[string(v)]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if len(got) != 1 {
				t.Errorf("%d different secrets, want 1", len(got))
			}
			other, err := stores[0].Secret(ctx, "webhook")
			if err != nil || got[string(other)] != 0 {
				t.Errorf("another secret's name gave the same value (%v)", err)
			}
		})
	}
}
