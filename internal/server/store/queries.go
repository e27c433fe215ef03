package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reach-sca/reach/internal/report"
)

// The read path: queries for the admin API, the dashboard and the
// exports. Each is one text for both dialects (written with ?, rebound by
// s.rebind); every value that comes from a request is a parameter.

// Limits of a findings query.
const (
	DefaultLimit = 200
	MaxLimit     = 5000
)

// findingColumns are the columns scanFinding reads, from findings f with
// vulns v and binaries b left-joined (findingFrom).
const findingColumns = `f.id, f.service, f.build_id, COALESCE(b.path, ''), f.osv,
  COALESCE(v.summary, ''), COALESCE(v.aliases, '[]'), f.module, f.version,
  f.fixed_version, f.package, f.symbol, f.scope, f.status, f.callsite_function,
  f.callsite_file, f.callsite_line, f.hits, f.hits_lower_bound, f.stack,
  f.first_seen, f.last_seen, f.first_reached, f.triage_state,
  f.triage_justification, f.triage_note, f.triage_by, f.triage_at,
  f.triage_expires`

const findingFrom = ` FROM findings f
  LEFT JOIN vulns v ON v.osv = f.osv
  LEFT JOIN binaries b ON b.service = f.service AND b.build_id = f.build_id`

// where is a WHERE clause under construction.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// String is the clause with a leading " WHERE", or "".
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// filterWhere returns the conditions of f on findings f, or ErrInvalid
// for a filter that cannot match anything stored (an unknown status or
// triage state, a negative limit).
//
// scan is for the aggregates, which read every matching finding: their
// status condition is written +f.status_rank, which keeps SQLite from
// looking up each row through the status index (findings_recent), so
// that it scans the covering index findings_rank instead, 4 to 10 times
// faster with 100,000 findings. (A unary + disqualifies a column from
// indexes in SQLite; in PostgreSQL it changes nothing.) Lists, which
// want findings_recent's order, pass false.
func (s *Store) filterWhere(f Filter, scan bool) (*where, error) {
	w := &where{}
	if f.Limit < 0 || f.Offset < 0 {
		return nil, fmt.Errorf("%w: negative limit or offset", ErrInvalid)
	}
	for _, v := range []string{f.Service, f.Environment, f.OSV, f.Query} {
		// PostgreSQL refuses such text in a parameter: a clear 400, not a
		// failed query.
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: a filter is not UTF-8 text", ErrInvalid)
		}
	}
	if f.Service != "" {
		w.add("f.service = ?", f.Service)
	}
	if f.Environment != "" {
		w.add("EXISTS (SELECT 1 FROM sightings s WHERE s.finding_id = f.id AND s.environment = ?)", f.Environment)
	}
	if f.Status != "" {
		if f.Status.Rank() == 0 {
			return nil, fmt.Errorf("%w: status %q: want reached, not_watched, linked or imported", ErrInvalid, f.Status)
		}
		if scan {
			w.add("+f.status_rank = ?", f.Status.Rank())
		} else {
			w.add("f.status_rank = ?", f.Status.Rank())
		}
	}
	if f.OSV != "" {
		w.add("f.osv = ?", f.OSV)
	}
	switch f.Triage {
	case "":
	case "none":
		w.add("f.triage_state = ''")
	case StateUnderInvestigation, StateAffected, StateNotAffected, StateFixed:
		w.add("f.triage_state = ?", f.Triage)
	default:
		return nil, fmt.Errorf("%w: triage state %q: want none, under_investigation, affected, not_affected or fixed", ErrInvalid, f.Triage)
	}
	if f.Query != "" {
		p := likePattern(f.Query)
		// The OSV entries whose text matches are found once, not for each
		// finding. The match ignores the case of ASCII letters: SQLite's
		// LIKE does, PostgreSQL's ILIKE too (3 times faster than comparing
		// LOWER of each column).
		like := "LIKE"
		if s.postgres {
			like = "ILIKE"
		}
		w.add(strings.ReplaceAll(`(f.module LIKE ? ESCAPE '\' OR f.package LIKE ? ESCAPE '\'
  OR f.symbol LIKE ? ESCAPE '\' OR f.service LIKE ? ESCAPE '\' OR f.osv LIKE ? ESCAPE '\'
  OR f.osv IN (SELECT q.osv FROM vulns q WHERE q.summary LIKE ? ESCAPE '\' OR q.aliases LIKE ? ESCAPE '\'))`, "LIKE", like),
			p, p, p, p, p, p, p)
	}
	return w, nil
}

// likePattern returns a LIKE pattern that matches strings containing q,
// with LIKE's wildcards in q escaped.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// limit returns f's limit and offset, defaults and bounds applied.
func limit(f Filter) (int, int) {
	n := f.Limit
	if n == 0 {
		n = DefaultLimit
	}
	return min(n, MaxLimit), f.Offset
}

// Findings lists findings, reached first, then most recently seen.
func (s *Store) Findings(ctx context.Context, f Filter) ([]Finding, error) {
	w, err := s.filterWhere(f, false)
	if err != nil {
		return nil, err
	}
	n, off := limit(f)
	q := `SELECT ` + findingColumns + findingFrom + w.String() +
		` ORDER BY f.status_rank DESC, f.last_seen DESC, f.id LIMIT ? OFFSET ?`
	fs, err := s.queryFindings(ctx, q, append(w.args, n, off)...)
	if err != nil {
		return nil, fmt.Errorf("store %s: findings: %w", s.dsn, err)
	}
	return fs, nil
}

// Finding returns one finding.
func (s *Store) Finding(ctx context.Context, id int64) (*Finding, error) {
	fs, err := s.queryFindings(ctx, `SELECT `+findingColumns+findingFrom+` WHERE f.id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store %s: finding %d: %w", s.dsn, id, err)
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("finding %d: %w", id, ErrNotFound)
	}
	return &fs[0], nil
}

// queryFindings runs q (selecting findingColumns) and adds to each
// finding its hosts and environments.
func (s *Store) queryFindings(ctx context.Context, q string, args ...any) ([]Finding, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, s.readErr(err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		f, err := scanFinding(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(err)
	}
	rows.Close()
	if err := s.addSightings(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func scanFinding(rows *sql.Rows) (Finding, error) {
	var (
		f                               Finding
		aliases, stack, status          string
		cfunc, cfile                    string
		cline, hits, lower, first, last int64
		reached, triageAt, triageExp    sql.NullInt64
		state, just, note, by           string
	)
	err := rows.Scan(&f.ID, &f.Service, &f.BuildID, &f.BinaryPath, &f.OSV,
		&f.Summary, &aliases, &f.Module, &f.Version,
		&f.FixedVersion, &f.Package, &f.Symbol, &f.Scope, &status, &cfunc,
		&cfile, &cline, &hits, &lower, &stack,
		&first, &last, &reached, &state,
		&just, &note, &by, &triageAt,
		&triageExp)
	if err != nil {
		return f, err
	}
	f.Status = report.Status(status)
	f.Hits = uint64(hits)
	f.HitsLowerBound = lower != 0
	f.FirstSeen, f.LastSeen = fromNanos(first), fromNanos(last)
	f.FirstReached = nullTime(reached)
	if cfunc != "" || cfile != "" {
		f.Callsite = &report.Callsite{Function: cfunc, File: cfile, Line: int(cline), Hits: f.Hits}
	}
	// Stored JSON is the server's own; a row that does not parse keeps
	// its other fields rather than failing the page.
	_ = json.Unmarshal([]byte(aliases), &f.Aliases)
	_ = json.Unmarshal([]byte(stack), &f.Stack)
	f.Triage = Triage{State: state, Justification: just, Note: note, By: by,
		At: nullTime(triageAt), Expires: nullTime(triageExp)}
	return f, nil
}

// addSightings sets the hosts and environments of fs, sorted.
func (s *Store) addSightings(ctx context.Context, fs []Finding) error {
	return eachIn(ctx, s, fs, func(f *Finding) int64 { return f.ID }, `SELECT DISTINCT finding_id, host, environment FROM sightings WHERE finding_id`,
		func(rows *sql.Rows, of map[int64]*Finding) error {
			var id int64
			var host, env string
			if err := rows.Scan(&id, &host, &env); err != nil {
				return err
			}
			if f := of[id]; f != nil {
				f.Hosts = addSorted(f.Hosts, host)
				if env != "" {
					f.Environments = addSorted(f.Environments, env)
				}
			}
			return nil
		})
}

// addSorted inserts v into the sorted set xs.
func addSorted(xs []string, v string) []string {
	i, found := slices.BinarySearch(xs, v)
	if found {
		return xs
	}
	return slices.Insert(xs, i, v)
}

// readErr marks an error of a database that is not there ErrUnavailable.
func (s *Store) readErr(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// statusOfRank inverts report.Status.Rank.
func statusOfRank(rank int64) report.Status {
	for _, st := range []report.Status{report.Reached, report.NotWatched, report.Linked, report.Imported} {
		if int64(st.Rank()) == rank {
			return st
		}
	}
	return ""
}

// Vuln returns one OSV entry's findings across the fleet.
func (s *Store) Vuln(ctx context.Context, osv string, f Filter) (*Vuln, error) {
	v := &Vuln{OSV: osv}
	var aliases string
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT summary, aliases FROM vulns WHERE osv = ?`), osv).Scan(&v.Summary, &aliases)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store %s: vuln %s: %w", s.dsn, osv, s.readErr(err))
	}
	_ = json.Unmarshal([]byte(aliases), &v.Aliases)
	f.OSV = osv
	if v.Findings, err = s.Findings(ctx, f); err != nil {
		return nil, err
	}
	if !known && len(v.Findings) == 0 {
		return nil, fmt.Errorf("vulnerability %s: %w", osv, ErrNotFound)
	}
	return v, nil
}
