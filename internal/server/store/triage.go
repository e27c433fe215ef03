package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// SetTriage applies a triage decision and returns the number of findings
// it changed. Every decision is kept in triage_log.
//
// The state must be one of under_investigation, affected, not_affected
// (with one of Justifications) or fixed; a justification given with
// another state is dropped. By names who decided ("reach" is reserved for
// the automatic affected of a reached finding); Expires, if set, must be
// in the future.
//
// A request for one finding (FindingID) sets that finding's own state,
// which no bulk decision overrides. A bulk request (OSV, Service or both)
// stores a triage rule, which applies to the findings it matches now and
// to those stored later, over any state that is not a finding's own: no
// state, reach's automatic affected, or a rule's state, unless that rule
// is more specific (service and OSV before OSV alone, before service
// alone). A newer decision for the same service and OSV replaces the
// rule.
func (s *Store) SetTriage(ctx context.Context, req TriageRequest) (int, error) {
	t, err := validateTriage(req)
	if err != nil {
		return 0, err
	}
	now := time.Now().UnixNano()
	var expires any
	if t.Expires != nil {
		expires = t.Expires.UnixNano()
	}
	changed := 0
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var findingID any
		if req.FindingID != 0 {
			findingID = req.FindingID
			r, err := tx.ExecContext(ctx, s.rebind(`UPDATE findings SET triage_state = ?, triage_justification = ?, triage_note = ?,
				triage_by = ?, triage_at = ?, triage_expires = ?, triage_rule = NULL WHERE id = ?`),
				t.State, t.Justification, t.Note, t.By, now, expires, req.FindingID)
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("finding %d: %w", req.FindingID, ErrNotFound)
			}
			changed = int(n)
		} else {
			n, err := s.triageRule(ctx, tx, req.Service, req.OSV, t, now, expires)
			if err != nil {
				return err
			}
			changed = n
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO triage_log (finding_id, service, osv, state, justification, note, by_user, at, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			findingID, req.Service, req.OSV, t.State, t.Justification, t.Note, t.By, now, expires)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("triage: %w", err)
	}
	return changed, nil
}

// lockRules takes, on PostgreSQL, the lock that orders changes of the
// triage rules (exclusive) and batches (shared) for the rest of tx:
// without it a rule stored while a batch inserts findings it matches
// would miss them (the batch read the rules before the rule was stored,
// the rule updated the findings before the batch was), at READ
// COMMITTED. SQLite has one writer at a time.
func (s *Store) lockRules(ctx context.Context, tx *sql.Tx, exclusive bool) error {
	if !s.postgres {
		return nil
	}
	q := `SELECT pg_advisory_xact_lock_shared(7225002)`
	if exclusive {
		q = `SELECT pg_advisory_xact_lock(7225002)`
	}
	if _, err := tx.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("triage rules: lock: %w", err)
	}
	return nil
}

// ruleRank is SQL for the specificity of a triage_rules row.
const ruleRank = `CASE WHEN service <> '' AND osv <> '' THEN 3 WHEN osv <> '' THEN 2 ELSE 1 END`

// triageRule stores the rule for service and osv and applies it to the
// findings it matches that have no state of their own nor one from a
// more specific rule.
func (s *Store) triageRule(ctx context.Context, tx *sql.Tx, service, osv string, t Triage, now int64, expires any) (int, error) {
	if err := s.lockRules(ctx, tx, true); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRowContext(ctx, s.rebind(`INSERT INTO triage_rules (service, osv, state, justification, note, by_user, at, expires)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, osv) DO UPDATE SET state = excluded.state,
		justification = excluded.justification, note = excluded.note, by_user = excluded.by_user, at = excluded.at,
		expires = excluded.expires RETURNING id`),
		service, osv, t.State, t.Justification, t.Note, t.By, now, expires).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("triage rule: %w", err)
	}
	rank := 1
	switch {
	case service != "" && osv != "":
		rank = 3
	case osv != "":
		rank = 2
	}
	q := `UPDATE findings SET triage_state = ?, triage_justification = ?, triage_note = ?, triage_by = ?, triage_at = ?,
		triage_expires = ?, triage_rule = ?
		WHERE (? = '' OR service = ?) AND (? = '' OR osv = ?)
		AND (triage_state = '' OR (triage_rule IS NULL AND triage_by = 'reach')
			OR triage_rule IN (SELECT id FROM triage_rules WHERE ` + ruleRank + ` <= ?))`
	r, err := tx.ExecContext(ctx, s.rebind(q), t.State, t.Justification, t.Note, t.By, now, expires, id,
		service, service, osv, osv, rank)
	if err != nil {
		return 0, fmt.Errorf("triage rule: %w", err)
	}
	n, err := r.RowsAffected()
	return int(n), err
}

// validateTriage checks a triage request and returns its decision as it
// is stored.
func validateTriage(req TriageRequest) (Triage, error) {
	t := req.Triage
	switch t.State {
	case StateUnderInvestigation, StateAffected, StateFixed:
		t.Justification = ""
	case StateNotAffected:
		if !slices.Contains(Justifications, t.Justification) {
			return t, fmt.Errorf("%w: triage: not_affected needs a justification, one of %v", ErrInvalid, Justifications)
		}
	default:
		return t, fmt.Errorf("%w: triage: state %s: use under_investigation, affected, not_affected or fixed", ErrInvalid, quote(t.State))
	}
	switch {
	case req.FindingID < 0:
		return t, fmt.Errorf("%w: triage: finding %d", ErrInvalid, req.FindingID)
	case req.FindingID != 0 && (req.Service != "" || req.OSV != ""):
		return t, fmt.Errorf("%w: triage: a finding, or a service and OSV, not both", ErrInvalid)
	case req.FindingID == 0 && req.Service == "" && req.OSV == "":
		return t, fmt.Errorf("%w: triage: which finding, service or OSV?", ErrInvalid)
	case t.By == "":
		return t, fmt.Errorf("%w: triage: who decides (by) is required", ErrInvalid)
	case t.By == "reach":
		return t, fmt.Errorf("%w: triage: by \"reach\" is reserved for reach's own decisions", ErrInvalid)
	case t.Expires != nil && !t.Expires.After(time.Now()):
		return t, fmt.Errorf("%w: triage: expiry %s is in the past", ErrInvalid, t.Expires.Format(time.RFC3339))
	}
	if err := checkStrings("note", t.Note, "by", t.By, "service", req.Service, "osv", req.OSV); err != nil {
		return t, fmt.Errorf("%w: triage: %v", ErrInvalid, err)
	}
	if hasControl(t.By) || hasControl(req.Service) || hasControl(req.OSV) {
		return t, fmt.Errorf("%w: triage: control characters in by, service or OSV", ErrInvalid)
	}
	return t, nil
}
