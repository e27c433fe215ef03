package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// Limits of a configuration.
const (
	MaxRules   = 1000  // rules in a configuration
	MaxTargets = 10000 // targets over all rules
)

// Config returns the current configuration (version 0, empty, before any).
func (s *Store) Config(ctx context.Context) (fleet.Config, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM configs ORDER BY version DESC LIMIT 1`).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return fleet.Config{Rules: []fleet.Rule{}}, nil
	}
	if err != nil {
		return fleet.Config{}, fmt.Errorf("configuration: %w", s.wrapUnavailable(err))
	}
	var cfg fleet.Config
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		return fleet.Config{}, fmt.Errorf("configuration: %w", err)
	}
	if cfg.Rules == nil {
		cfg.Rules = []fleet.Rule{}
	}
	return cfg, nil
}

// ConfigVersion returns the current configuration's version (0 before
// any): what a server polls to learn of a change made on another.
func (s *Store) ConfigVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM configs`).Scan(&v); err != nil {
		return 0, fmt.Errorf("configuration version: %w", s.wrapUnavailable(err))
	}
	return v, nil
}

// SetConfig stores cfg as the next version (its Version, Updated and
// UpdatedBy are set here) and returns it. Two servers setting a
// configuration at once get two versions, one after the other: none is
// lost. Rules are checked: each has targets, and no string is empty, too
// long or has control characters (ErrInvalid).
func (s *Store) SetConfig(ctx context.Context, cfg fleet.Config, by string) (fleet.Config, error) {
	return s.setConfig(ctx, -1, cfg, by)
}

// SetConfigFrom stores cfg as the version after from, if from is the
// current version, else fails with ErrConflict (someone changed the
// configuration since from was read): the check and the change are one,
// on every server of the database. Otherwise as SetConfig.
func (s *Store) SetConfigFrom(ctx context.Context, from int64, cfg fleet.Config, by string) (fleet.Config, error) {
	if from < 0 {
		return fleet.Config{}, fmt.Errorf("%w: configuration: version %d", ErrInvalid, from)
	}
	return s.setConfig(ctx, from, cfg, by)
}

// setConfig stores cfg after version from, or after the current version
// (from -1).
func (s *Store) setConfig(ctx context.Context, from int64, cfg fleet.Config, by string) (fleet.Config, error) {
	if err := validateConfig(&cfg); err != nil {
		return fleet.Config{}, err
	}
	if err := checkString("by", by); err != nil || hasControl(by) {
		return fleet.Config{}, fmt.Errorf("%w: configuration: by %s", ErrInvalid, quote(by))
	}
	if cfg.Rules == nil {
		cfg.Rules = []fleet.Rule{}
	}
	cfg.UpdatedBy = by
	// The next version is the largest plus one; a server that took it
	// first makes the insert do nothing, and this one tries the next (or,
	// after from, fails).
	for range 100 {
		v, err := s.ConfigVersion(ctx)
		if err != nil {
			return fleet.Config{}, err
		}
		if from >= 0 && v != from {
			return fleet.Config{}, fmt.Errorf("configuration: %w: version %d is current, not %d", ErrConflict, v, from)
		}
		cfg.Version = v + 1
		cfg.Updated = time.Now().UTC()
		body, err := json.Marshal(cfg)
		if err != nil {
			return fleet.Config{}, fmt.Errorf("configuration: %w", err)
		}
		r, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO configs (version, body, created, created_by) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`),
			cfg.Version, string(body), cfg.Updated.UnixNano(), by)
		if err != nil {
			return fleet.Config{}, fmt.Errorf("configuration: %w", s.wrapUnavailable(err))
		}
		if n, err := r.RowsAffected(); err != nil {
			return fleet.Config{}, fmt.Errorf("configuration: %w", err)
		} else if n == 1 {
			return cfg, nil
		}
		if err := ctx.Err(); err != nil {
			return fleet.Config{}, err
		}
	}
	return fleet.Config{}, fmt.Errorf("configuration: %w: version taken 100 times in a row", ErrUnavailable)
}

func validateConfig(cfg *fleet.Config) error {
	if len(cfg.Rules) > MaxRules {
		return fmt.Errorf("%w: configuration: %d rules, at most %d", ErrInvalid, len(cfg.Rules), MaxRules)
	}
	targets := 0
	for i, r := range cfg.Rules {
		if err := checkConfigString("service", r.Service, true); err != nil {
			return fmt.Errorf("%w: configuration: rule %d: %v", ErrInvalid, i, err)
		}
		if err := checkConfigString("environment", r.Environment, true); err != nil {
			return fmt.Errorf("%w: configuration: rule %d: %v", ErrInvalid, i, err)
		}
		if len(r.Targets) == 0 {
			return fmt.Errorf("%w: configuration: rule %d: no targets (use \"*\" for every vulnerable symbol)", ErrInvalid, i)
		}
		for j, t := range r.Targets {
			if err := checkConfigString("target", t, false); err != nil {
				return fmt.Errorf("%w: configuration: rule %d: target %d: %v", ErrInvalid, i, j, err)
			}
		}
		targets += len(r.Targets)
		if targets > MaxTargets {
			return fmt.Errorf("%w: configuration: more than %d targets", ErrInvalid, MaxTargets)
		}
	}
	return nil
}

// checkConfigString checks a string of a configuration rule: at most
// 1,000 bytes of UTF-8, no control characters, no spaces around it, not
// empty unless it may be.
func checkConfigString(name, s string, mayBeEmpty bool) error {
	switch {
	case s == "" && !mayBeEmpty:
		return fmt.Errorf("%s is empty", name)
	case len(s) > 1000:
		return fmt.Errorf("%s: %d bytes, at most 1000", name, len(s))
	case hasControl(s):
		return fmt.Errorf("%s %s has control characters", name, quote(s))
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%s %s has spaces around it", name, quote(s))
	}
	return checkString(name, s)
}
