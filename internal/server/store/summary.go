package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// The summary table service_vulns (migration 0005) holds per service and
// OSV entry what the overview's ranking reads of the findings, so that
// the overview does not read every finding.

// summaryAggregates is the select list of a service_vulns row computed
// from the findings f, grouped by service and OSV (the overview's
// ranking reads these names).
const summaryAggregates = `f.service AS service, f.osv AS osv, MAX(f.status_rank) AS r, MIN(f.first_reached) AS fr, MAX(f.last_seen) AS ls,
  SUM(CASE WHEN f.status_rank = 4 THEN 1 ELSE 0 END) AS n4,
  SUM(CASE WHEN f.status_rank = 3 THEN 1 ELSE 0 END) AS n3,
  SUM(CASE WHEN f.status_rank = 2 THEN 1 ELSE 0 END) AS n2,
  SUM(CASE WHEN f.status_rank = 1 THEN 1 ELSE 0 END) AS n1`

// summaryRows is the same select list read from the summary table f.
const summaryRows = `f.service AS service, f.osv AS osv, f.status_rank AS r, f.first_reached AS fr, f.last_seen AS ls,
  f.n_reached AS n4, f.n_not_watched AS n3, f.n_linked AS n2, f.n_imported AS n1`

const summaryColumns = `service, osv, status_rank, first_reached, last_seen, n_reached, n_not_watched, n_linked, n_imported`

// RebuildSummary computes the summary table again from every finding,
// as migration 0005 fills it: for rows written to findings by other
// means than the Store (a bulk load, a restore).
func (s *Store) RebuildSummary(ctx context.Context) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM service_vulns`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO service_vulns (`+summaryColumns+`) SELECT `+summaryAggregates+
			` FROM findings f GROUP BY f.service, f.osv`)
		return err
	})
	if err != nil {
		return fmt.Errorf("store %s: rebuild summary: %w", s.dsn, err)
	}
	return nil
}

// summaryAnswers reports whether the summary table answers the ranking
// for f: it knows the findings of each service and OSV, not which
// status, triage state, environment or text they have.
func summaryAnswers(f Filter) bool {
	return f.Environment == "" && f.Status == "" && f.Triage == "" && f.Query == ""
}

// updateSummary computes again the summary rows of the (service, OSV)
// pairs of the rows the batch wrote, after they are written. On
// PostgreSQL (READ COMMITTED) it first locks the pairs' rows, in key
// order, and computes them in a later statement, which sees the findings
// that transactions holding these locks before committed: a row computed
// at once, waiting on a lock, would be computed from a snapshot without
// them. Ingest runs it last, when it holds every other lock it takes,
// so that the only locks waited for meanwhile are summary rows, taken
// in one order by all.
func (s *Store) updateSummary(ctx context.Context, tx *sql.Tx, rows []*findingRow) error {
	type pair struct{ service, osv string }
	seen := make(map[pair]bool)
	var pairs []pair
	for _, r := range rows {
		// A narrow update that leaves last_seen changes only hits,
		// which the summary does not have.
		changed := r.write || r.narrow && r.stored != nil && r.narrowLastSeen > r.stored.lastSeen
		p := pair{r.key.service, r.key.osv}
		if changed && !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(strings.Compare(a.service, b.service), strings.Compare(a.osv, b.osv))
	})
	const set = `UPDATE service_vulns SET status_rank = g.r, first_reached = g.fr, last_seen = g.ls,
  n_reached = g.n4, n_not_watched = g.n3, n_linked = g.n2, n_imported = g.n1
FROM (SELECT ` + summaryAggregates + ` FROM %s GROUP BY f.service, f.osv) AS g
WHERE service_vulns.service = g.service AND service_vulns.osv = g.osv`
	const lock = ` ON CONFLICT (service, osv) DO UPDATE SET status_rank = service_vulns.status_rank`
	if s.postgres && len(pairs) > 0 {
		// Two statements whatever the number of pairs: each round trip
		// to the server counts (twice as many made a batch of new rows
		// take twice as long).
		services, osvs := make([]string, len(pairs)), make([]string, len(pairs))
		for i, p := range pairs {
			services[i], osvs[i] = p.service, p.osv
		}
		const p = `unnest($1::text[], $2::text[]) AS p (service, osv)`
		if _, err := tx.ExecContext(ctx, `INSERT INTO service_vulns (service, osv) SELECT p.service, p.osv FROM `+p+
			` ORDER BY p.service, p.osv`+lock, services, osvs); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(set, p+` JOIN findings f ON f.osv = p.osv AND f.service = p.service`), services, osvs); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		return nil
	}
	// Up to 256 pairs a statement: a batch of 50 new pairs took 10 to 40%
	// longer than without the summary in chunkSize's chunks of 16, 7 to 10%
	// so.
	for start := 0; start < len(pairs); {
		n := min(len(pairs)-start, 256)
		args := make([]any, 0, 2*n)
		for _, p := range pairs[start : start+n] {
			args = append(args, p.service, p.osv)
		}
		start += n
		if _, err := tx.ExecContext(ctx, `INSERT INTO service_vulns (service, osv) VALUES `+values(n, 2)+lock, args...); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		match := strings.TrimSuffix(strings.Repeat("(f.service = ? AND f.osv = ?) OR ", n), " OR ")
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(set, `findings f WHERE `+match), args...); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
	}
	return nil
}
