package store

import (
	"context"
	"errors"
	"testing"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestUnavailable stops the database under an open store: every call
// fails with ErrUnavailable (the HTTP layer's 503), and works again, with
// nothing lost, once the database is back.
func TestUnavailable(t *testing.T) {
	pg := testprog.PostgresServer(t)
	ctx := context.Background()
	s := openTest(t, pg.DSN(), Options{})
	ag := enrol(t, s, "h1")
	mustIngest(t, s, ag.AgentID, batch(ag.AgentID, 1, "i1", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 1)))
	pg.Stop()
	b2 := batch(ag.AgentID, 2, "i1", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 5))
	calls := map[string]func() error{
		"Ingest":       func() error { _, err := s.Ingest(ctx, ag.AgentID, b2); return err },
		"AgentByToken": func() error { _, err := s.AgentByToken(ctx, ag.Token); return err },
		"AdminToken":   func() error { _, err := s.AdminToken(ctx, "x"); return err },
		"Config":       func() error { _, err := s.Config(ctx); return err },
		"SetConfig": func() error {
			_, err := s.SetConfig(ctx, fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}}}}, "alice")
			return err
		},
		"SetTriage": func() error {
			_, err := s.SetTriage(ctx, TriageRequest{OSV: "GO-1", Triage: Triage{State: StateAffected, By: "alice"}})
			return err
		},
		"Secret": func() error { _, err := s.Secret(ctx, "x"); return err },
		"Ping":   func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the database down: %v, want ErrUnavailable", name, err)
		}
	}
	pg.Start()
	res := mustIngest(t, s, ag.AgentID, b2)
	if res.Duplicate || res.Updates != 1 {
		t.Errorf("batch 2 after the restart: %+v, want it stored", res)
	}
	if r := rowOf(t, s, "api", "GO-1", "Parse", "main.a"); r.Hits != 5 {
		t.Errorf("hits %d, want 5", r.Hits)
	}
}
