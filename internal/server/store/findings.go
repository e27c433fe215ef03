package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// lastSeenStep is how far last_seen must move for Ingest to write a row
// that did not change otherwise: a finding, sighting or binary reported
// again and again writes nothing new within this time. (Writing only what
// changes is what lets the store keep up with a fleet: most of a batch
// repeats the one before.)
const lastSeenStep = time.Minute

// storedFinding is what readStored reads of a finding row.
type storedFinding struct {
	id                     int64
	rank                   int
	firstSeen, lastSeen    int64
	firstReached           int64 // 0: NULL
	stackEmpty, lowerBound bool
	module, version, fixed string
	scope, triage          string
}

// storedSighting is what readStored reads of a sighting.
type storedSighting struct {
	agentID           string
	hits, lastSeen    int64
	host, environment string
	labels, pids      string
}

// readStored reads the stored state of the rows and of their sightings,
// for plan. Reading first is safe as the merges are monotonic (a row
// that needs nothing at the time it is read needs nothing after another
// transaction wrote it), and the sightings of an instance are written by
// its agent only, whose batches are serialized by the lock on its row in
// agents (updateAgent).
func (s *Store) readStored(ctx context.Context, tx *sql.Tx, rows []*findingRow) error {
	type binKey struct{ service, buildID string }
	bins := make(map[binKey]map[findingKey]*findingRow)
	instances := make(map[binKey]map[string]bool)
	var order []binKey
	for _, r := range rows {
		// From scratch: a transaction may run again (inTx).
		r.stored, r.id = nil, 0
		for _, g := range r.sightings {
			g.stored = nil
		}
		k := binKey{r.key.service, r.key.buildID}
		if bins[k] == nil {
			bins[k] = make(map[findingKey]*findingRow)
			instances[k] = make(map[string]bool)
			order = append(order, k)
		}
		bins[k][r.key] = r
		for in := range r.sightings {
			instances[k][in] = true
		}
	}
	for _, bk := range order {
		byKey := bins[bk]
		rs, err := tx.QueryContext(ctx, s.rebind(`SELECT id, osv, package, symbol, callsite_function, callsite_file, callsite_line,
			status_rank, first_seen, last_seen, first_reached, CASE WHEN stack = '[]' THEN 1 ELSE 0 END, hits_lower_bound,
			module, version, fixed_version, scope, triage_state
			FROM findings WHERE service = ? AND build_id = ?`), bk.service, bk.buildID)
		if err != nil {
			return fmt.Errorf("findings: %w", err)
		}
		byID := make(map[int64]*findingRow)
		for rs.Next() {
			k := findingKey{service: bk.service, buildID: bk.buildID}
			var st storedFinding
			var line, rank, stackEmpty, lowerBound int64
			var firstReached sql.NullInt64
			if err := rs.Scan(&st.id, &k.osv, &k.pkg, &k.symbol, &k.function, &k.file, &line,
				&rank, &st.firstSeen, &st.lastSeen, &firstReached, &stackEmpty, &lowerBound,
				&st.module, &st.version, &st.fixed, &st.scope, &st.triage); err != nil {
				rs.Close()
				return fmt.Errorf("findings: %w", err)
			}
			k.line = int(line)
			if r := byKey[k]; r != nil {
				st.rank, st.firstReached = int(rank), firstReached.Int64
				st.stackEmpty, st.lowerBound = stackEmpty != 0, lowerBound != 0
				r.stored, r.id = &st, st.id
				byID[st.id] = r
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("findings: %w", err)
		}
		if len(byID) == 0 {
			continue
		}
		var args []any
		args = append(args, bk.service, bk.buildID)
		var ins []string
		for in := range instances[bk] {
			ins = append(ins, in)
		}
		sort.Strings(ins)
		for _, in := range ins {
			args = append(args, in)
		}
		rs, err = tx.QueryContext(ctx, s.rebind(`SELECT s.finding_id, s.instance, s.agent_id, s.hits, s.last_seen, s.host, s.environment, s.labels, s.pids
			FROM sightings s JOIN findings f ON f.id = s.finding_id
			WHERE f.service = ? AND f.build_id = ? AND s.instance IN (`+values(1, len(ins))[1:]), args...)
		if err != nil {
			return fmt.Errorf("sightings: %w", err)
		}
		for rs.Next() {
			var id int64
			var in string
			var g storedSighting
			if err := rs.Scan(&id, &in, &g.agentID, &g.hits, &g.lastSeen, &g.host, &g.environment, &g.labels, &g.pids); err != nil {
				rs.Close()
				return fmt.Errorf("sightings: %w", err)
			}
			if r := byID[id]; r != nil && r.sightings[in] != nil {
				r.sightings[in].stored = &g
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("sightings: %w", err)
		}
	}
	return nil
}

// plan decides, from the stored state, what of r to write: r.hits is the
// hits to add (to store, for a new row), r.write whether the row needs
// writing, and each sighting's write whether it does. A sighting that
// another agent stored under the same instance name is not this agent's
// to change: it is left alone and does not count.
func (r *findingRow) plan(agentID string) {
	r.hits = 0
	for _, g := range r.sightings {
		old := g.stored
		switch {
		case old == nil:
			r.hits += g.hits
			g.write = true
		case old.agentID != agentID:
			g.write = false
		default:
			if g.hits > old.hits {
				r.hits += g.hits - old.hits
			}
			g.write = g.hits > old.hits || g.lastSeen > old.lastSeen+int64(lastSeenStep) ||
				g.host != old.host || g.environment != old.environment || g.labels != old.labels || g.pids != old.pids
		}
	}
	st := r.stored
	if st == nil {
		r.write = true
		return
	}
	// Most rows that change only count more hits, or were seen again: a
	// narrow update by ID writes them.
	// last_seen moves in steps: a row whose hits alone change keeps its
	// indexed columns, which lets PostgreSQL update it in place (a
	// heap-only tuple).
	r.narrowLastSeen = st.lastSeen
	if r.lastSeen > st.lastSeen+int64(lastSeenStep) {
		r.narrowLastSeen = r.lastSeen
	}
	r.narrow = r.hits > 0 || r.narrowLastSeen > st.lastSeen
	r.write = r.status.Rank() > st.rank ||
		r.firstSeen < st.firstSeen ||
		r.firstReached != 0 && (st.firstReached == 0 || r.firstReached < st.firstReached) ||
		r.status == report.Reached && st.triage == "" ||
		r.stack != "[]" && st.stackEmpty ||
		r.hitsLowerBound && !st.lowerBound ||
		r.fixed != "" && r.fixed != st.fixed ||
		r.module != st.module || r.version != st.version || r.scope != st.scope
	r.narrow = r.narrow && !r.write
}

// upsertFindings writes the rows that need it, sets the IDs of all and
// returns those of the rows that became reached.
func (s *Store) upsertFindings(ctx context.Context, tx *sql.Tx, rows []*findingRow, marker string) (reached []int64, err error) {
	const cols = 28
	byKey := make(map[findingKey]*findingRow, len(rows))
	var write []*findingRow
	var lock []int64
	for _, r := range rows {
		if r.stored != nil {
			r.id = r.stored.id
			if r.write || r.narrow {
				lock = append(lock, r.id)
			}
		}
		if r.write {
			write = append(write, r)
		}
	}
	if err := s.lockFindings(ctx, tx, lock); err != nil {
		return nil, err
	}
	// New rows in key order, so that transactions inserting the same keys
	// wait for one another rather than deadlock.
	sort.Slice(write, func(i, j int) bool { return write[i].key.less(write[j].key) })
	for start := 0; start < len(write); {
		n := chunkSize(len(write)-start, cols)
		chunk := write[start : start+n]
		start += n
		args := make([]any, 0, n*cols)
		for _, r := range chunk {
			byKey[r.key] = r
			k := r.key
			var firstReached any
			reachedBy := ""
			if r.firstReached != 0 {
				firstReached, reachedBy = r.firstReached, marker
			}
			t := r.triage
			args = append(args, k.service, k.buildID, k.osv, k.pkg, k.symbol, k.function, k.file, int64(k.line),
				r.module, r.version, r.fixed, r.scope, string(r.status), int64(r.status.Rank()), r.hits, boolInt(r.hitsLowerBound),
				r.stack, r.firstSeen, r.lastSeen, firstReached, reachedBy,
				t.state, t.justification, t.note, t.by, nullInt(t.at), nullInt(t.expires), nullInt(t.rule))
		}
		q := `INSERT INTO findings (service, build_id, osv, package, symbol, callsite_function, callsite_file, callsite_line,
			module, version, fixed_version, scope, status, status_rank, hits, hits_lower_bound,
			stack, first_seen, last_seen, first_reached, reached_batch,
			triage_state, triage_justification, triage_note, triage_by, triage_at, triage_expires, triage_rule) VALUES ` + values(n, cols) + findingsConflict
		rs, err := tx.QueryContext(ctx, s.rebind(q), args...)
		if err != nil {
			return nil, fmt.Errorf("findings: %w", err)
		}
		for rs.Next() {
			var k findingKey
			var id, line int64
			var reachedBy string
			if err := rs.Scan(&id, &k.service, &k.buildID, &k.osv, &k.pkg, &k.symbol, &k.function, &k.file, &line, &reachedBy); err != nil {
				rs.Close()
				return nil, fmt.Errorf("findings: %w", err)
			}
			k.line = int(line)
			r := byKey[k]
			if r == nil {
				rs.Close()
				return nil, fmt.Errorf("findings: upsert returned a row not asked for")
			}
			r.id = id
			if reachedBy == marker && r.firstReached != 0 {
				reached = append(reached, id)
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("findings: %w", err)
		}
	}
	for _, r := range rows {
		if r.id == 0 {
			return nil, fmt.Errorf("findings: upsert returned no row for %s %s", r.key.osv, r.key.symbol)
		}
	}
	if err := s.updateFindings(ctx, tx, rows); err != nil {
		return nil, err
	}
	sort.Slice(reached, func(i, j int) bool { return reached[i] < reached[j] })
	return reached, nil
}

// lockFindings locks the stored rows a batch writes, in ID order, before
// it writes any: two transactions writing rows in different orders
// (upserts go in key order, updates in the table's order) would deadlock
// on PostgreSQL. SQLite has one writer at a time: nothing to lock there.
func (s *Store) lockFindings(ctx context.Context, tx *sql.Tx, ids []int64) error {
	if !s.postgres || len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	for len(args) > 0 {
		n := min(len(args), 1000)
		rs, err := tx.QueryContext(ctx, s.rebind(`SELECT id FROM findings WHERE id IN (`+values(1, n)[1:]+` ORDER BY id FOR UPDATE`), args[:n]...)
		if err != nil {
			return fmt.Errorf("findings: lock: %w", err)
		}
		for rs.Next() {
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("findings: lock: %w", err)
		}
		args = args[n:]
	}
	return nil
}

// less orders keys.
func (k findingKey) less(o findingKey) bool {
	return cmp.Or(strings.Compare(k.service, o.service), strings.Compare(k.buildID, o.buildID), strings.Compare(k.osv, o.osv),
		strings.Compare(k.pkg, o.pkg), strings.Compare(k.symbol, o.symbol), strings.Compare(k.function, o.function),
		strings.Compare(k.file, o.file), cmp.Compare(k.line, o.line)) < 0
}

// updateFindings writes the rows whose hits grew or that were seen again,
// and nothing else changed, by ID.
func (s *Store) updateFindings(ctx context.Context, tx *sql.Tx, rows []*findingRow) error {
	const cols = 3
	var args []any
	for _, r := range rows {
		if r.narrow {
			args = append(args, r.id, r.hits, r.narrowLastSeen)
		}
	}
	one := "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))"
	err := s.execChunks(ctx, tx, args, cols, func(n int) string {
		return `UPDATE findings SET hits = findings.hits + v.column2,
			last_seen = CASE WHEN v.column3 > findings.last_seen THEN v.column3 ELSE findings.last_seen END
			FROM (VALUES ` + strings.TrimSuffix(strings.Repeat(one+", ", n), ", ") + `) AS v WHERE findings.id = v.column1`
	})
	if err != nil {
		return fmt.Errorf("findings: %w", err)
	}
	return nil
}

// findingsConflict merges a row into the one stored: hits are added (the
// increase of the sightings' totals), the status only goes up, first_seen
// back and last_seen forward, first_reached to the earliest hit
// (reached_batch then says which batch made it reached), the first stack
// stays, and a reached finding without any triage state gets "affected"
// by reach. SET expressions see the stored row's old values.
const findingsConflict = `
ON CONFLICT (service, build_id, osv, package, symbol, callsite_function, callsite_file, callsite_line) DO UPDATE SET
  module = excluded.module,
  version = excluded.version,
  fixed_version = CASE WHEN excluded.fixed_version <> '' THEN excluded.fixed_version ELSE findings.fixed_version END,
  scope = excluded.scope,
  status = CASE WHEN excluded.status_rank > findings.status_rank THEN excluded.status ELSE findings.status END,
  status_rank = CASE WHEN excluded.status_rank > findings.status_rank THEN excluded.status_rank ELSE findings.status_rank END,
  hits = findings.hits + excluded.hits,
  hits_lower_bound = CASE WHEN excluded.hits_lower_bound > findings.hits_lower_bound THEN excluded.hits_lower_bound ELSE findings.hits_lower_bound END,
  stack = CASE WHEN findings.stack = '[]' THEN excluded.stack ELSE findings.stack END,
  first_seen = CASE WHEN excluded.first_seen < findings.first_seen THEN excluded.first_seen ELSE findings.first_seen END,
  last_seen = CASE WHEN excluded.last_seen > findings.last_seen THEN excluded.last_seen ELSE findings.last_seen END,
  first_reached = CASE WHEN findings.first_reached IS NULL OR excluded.first_reached < findings.first_reached THEN excluded.first_reached ELSE findings.first_reached END,
  reached_batch = CASE WHEN findings.first_reached IS NULL AND excluded.first_reached IS NOT NULL THEN excluded.reached_batch ELSE findings.reached_batch END,
  triage_state = CASE WHEN findings.triage_state = '' AND excluded.status = 'reached' THEN 'affected' ELSE findings.triage_state END,
  triage_by = CASE WHEN findings.triage_state = '' AND excluded.status = 'reached' THEN 'reach' ELSE findings.triage_by END,
  triage_at = CASE WHEN findings.triage_state = '' AND excluded.status = 'reached' THEN excluded.last_seen ELSE findings.triage_at END
RETURNING id, service, build_id, osv, package, symbol, callsite_function, callsite_file, callsite_line, reached_batch`

// upsertSightings writes the sightings that need it, of the rows stored
// before the batch (stored), or of the others. The update keeps an
// instance's largest total and is the agent's own only: a sighting of
// another agent under the same instance name stays as it is.
func (s *Store) upsertSightings(ctx context.Context, tx *sql.Tx, agentID string, rows []*findingRow, stored bool) error {
	const cols = 10
	var args []any
	for _, r := range rows {
		if (r.stored != nil) != stored {
			continue
		}
		// In instance order, so that two transactions lock rows in the
		// same order.
		instances := make([]string, 0, len(r.sightings))
		for in, g := range r.sightings {
			if g.write {
				instances = append(instances, in)
			}
		}
		sort.Strings(instances)
		for _, in := range instances {
			g := r.sightings[in]
			args = append(args, r.id, g.instance, agentID, g.host, g.environment, g.labels, g.pids, g.hits, g.firstSeen, g.lastSeen)
		}
	}
	return s.execChunks(ctx, tx, args, cols, func(n int) string {
		return `INSERT INTO sightings (finding_id, instance, agent_id, host, environment, labels, pids, hits, first_seen, last_seen) VALUES ` +
			values(n, cols) + ` ON CONFLICT (finding_id, instance) DO UPDATE SET
			host = excluded.host, environment = excluded.environment, labels = excluded.labels, pids = excluded.pids,
			hits = CASE WHEN excluded.hits > sightings.hits THEN excluded.hits ELSE sightings.hits END,
			first_seen = CASE WHEN excluded.first_seen < sightings.first_seen THEN excluded.first_seen ELSE sightings.first_seen END,
			last_seen = CASE WHEN excluded.last_seen > sightings.last_seen THEN excluded.last_seen ELSE sightings.last_seen END
			WHERE sightings.agent_id = excluded.agent_id`
	})
}
