package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reach-sca/reach/internal/fleet"
)

func TestConfig(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		cfg, err := s.Config(ctx)
		if err != nil || cfg.Version != 0 || cfg.Rules == nil || len(cfg.Rules) != 0 {
			t.Fatalf("Config before any = %+v, %v; want version 0 with no rules", cfg, err)
		}
		want := fleet.Config{Paused: true, Rules: []fleet.Rule{{Service: "api", Targets: []string{"GO-2024-1234", "*"}, Count: true}}}
		for v := int64(1); v <= 3; v++ {
			got, err := s.SetConfig(ctx, want, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != v || got.UpdatedBy != "alice" || got.Updated.IsZero() {
				t.Errorf("SetConfig = version %d by %q at %v, want version %d by alice", got.Version, got.UpdatedBy, got.Updated, v)
			}
		}
		got, err := s.Config(ctx)
		if err != nil || got.Version != 3 || !got.Paused || !slices.Equal(got.Rules[0].Targets, want.Rules[0].Targets) || !got.Rules[0].Count {
			t.Errorf("Config = %+v, %v; want version 3 as set", got, err)
		}
		if v, err := s.ConfigVersion(ctx); v != 3 || err != nil {
			t.Errorf("ConfigVersion = %d, %v; want 3", v, err)
		}
	})
}

func TestSetConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		rule fleet.Rule
		says string
	}{
		{"no targets", fleet.Rule{Service: "api"}, "no targets"},
		{"empty target", fleet.Rule{Targets: []string{""}}, "target 0: target is empty"},
		{"control character", fleet.Rule{Targets: []string{"GO-1\n"}}, "control"},
		{"spaces", fleet.Rule{Targets: []string{" GO-1"}}, "spaces"},
		{"service with escape", fleet.Rule{Service: "a\x1b[31m", Targets: []string{"*"}}, "service"},
		{"long", fleet.Rule{Targets: []string{strings.Repeat("x", 1001)}}, "at most 1000"},
		{"not UTF-8", fleet.Rule{Environment: "\xff", Targets: []string{"*"}}, "UTF-8"},
	}
	ctx := context.Background()
	forEachStore(t, Options{}, func(t *testing.T, s *Store) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cfg := fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}}, tt.rule}}
				_, err := s.SetConfig(ctx, cfg, "alice")
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "rule 1") || !strings.Contains(err.Error(), tt.says) {
					t.Errorf("SetConfig = %v, want ErrInvalid saying rule 1: %s", err, tt.says)
				}
			})
		}
		if n := count(t, s, "configs"); n != 0 {
			t.Errorf("%d configurations stored from invalid ones", n)
		}
	})
}

// TestSetConfigConcurrent sets configurations from two stores on one
// database at once: each gets its own version, and none is lost.
func TestSetConfigConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			stores := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
			const n = 20
			versions := make(chan int64, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					cfg, err := stores[i%2].SetConfig(ctx, fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}}}}, "alice")
					if err != nil {
						t.Error(err)
						return
					}
					versions <- cfg.Version
				})
			}
			wg.Wait()
			close(versions)
			var got []int64
			for v := range versions {
				got = append(got, v)
			}
			slices.Sort(got)
			for i, v := range got {
				if v != int64(i+1) {
					t.Fatalf("versions %v, want 1 to %d once each", got, n)
				}
			}
			if len(got) != n || count(t, stores[0], "configs") != n {
				t.Errorf("%d versions, want %d", len(got), n)
			}
		})
	}
}

// TestSetConfigFrom has people edit version 1 on two stores at once:
// exactly one change is stored, the other gets ErrConflict.
func TestSetConfigFrom(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			stores := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
			cfg := fleet.Config{Rules: []fleet.Rule{{Targets: []string{"*"}}}}
			if _, err := stores[0].SetConfigFrom(ctx, 1, cfg, "alice"); !errors.Is(err, ErrConflict) {
				t.Errorf("from version 1 before any: %v, want ErrConflict", err)
			}
			if got, err := stores[0].SetConfigFrom(ctx, 0, cfg, "alice"); err != nil || got.Version != 1 {
				t.Fatalf("from version 0: %+v, %v; want version 1", got, err)
			}
			const n = 8
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					_, err := stores[i%2].SetConfigFrom(ctx, 1, cfg, "bob")
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			stored := 0
			for err := range errs {
				switch {
				case err == nil:
					stored++
				case !errors.Is(err, ErrConflict):
					t.Error(err)
				}
			}
			if v, _ := stores[1].ConfigVersion(ctx); stored != 1 || v != 2 {
				t.Errorf("%d edits of version 1 stored, version %d now; want 1 and 2", stored, v)
			}
		})
	}
}
