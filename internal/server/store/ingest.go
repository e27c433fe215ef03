package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
)

// Ingest stores a batch from agent agentID (ErrForbidden when the batch
// names another agent), at most once per (agent, seq): a batch stored
// before is acknowledged as Duplicate and nothing is written. The whole
// batch is checked first (ErrInvalid says what is wrong and where), then
// written in one transaction.
//
// What a batch does to the stored findings:
//   - One finding row per service x build ID x OSV x package x symbol x
//     callsite: a reached symbol gets a row per callsite, with the
//     callsite's hits, and the row without a callsite has the hits no
//     callsite was recorded for (one-shot mode records the first hit's
//     callsite only); a symbol without callsites (or not reached) one row
//     with an empty callsite and the symbol's hits; a finding without
//     symbols (imported) one row with its module as package and no symbol.
//     A binary without a build ID is keyed by "path:" and its path.
//   - A row's status never goes down; first_seen only goes back,
//     last_seen forward; first_reached is the earliest first hit reported;
//     the stack is the first one stored; hits_lower_bound once set stays.
//   - Hits are per instance totals: each (finding, instance) sighting
//     keeps the largest total reported, and a finding's hits are the sum
//     over its sightings, so duplicate or reordered reports never double.
//   - Triage: a new finding matched by a triage rule takes the rule's
//     state (the most specific rule: service and OSV, then OSV, then
//     service); a finding that is reached and has no state (neither its own
//     nor from a rule) gets "affected" by "reach". Nothing sets
//     not_affected but a person.
//   - Each finding that became reached with this batch is queued in the
//     outbox once per sink of Options.Sinks, and listed in Reached.
func (s *Store) Ingest(ctx context.Context, agentID string, b *fleet.Batch) (IngestResult, error) {
	if _, err := validateBatch(agentID, b); err != nil {
		return IngestResult{}, err
	}
	now := time.Now()
	rows := collectRows(b, now)
	var res IngestResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = IngestResult{}
		r, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO batches (agent_id, seq, received, updates) VALUES (?, ?, ?, ?) ON CONFLICT (agent_id, seq) DO NOTHING`),
			agentID, int64(b.Seq), now.UnixNano(), len(rows))
		if err != nil {
			return fmt.Errorf("batch: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("batch: %w", err)
		} else if n == 0 {
			res.Duplicate = true
			return errDuplicate
		}
		// Before readStored: the agent's row, locked until the end,
		// serializes its batches, so that what readStored reads of its
		// sightings stays true (TestIngestSameAgentConcurrent).
		if err := s.updateAgent(ctx, tx, agentID, b, now); err != nil {
			return err
		}
		if err := s.upsertBinaries(ctx, tx, b, now); err != nil {
			return err
		}
		if err := s.upsertVulns(ctx, tx, b); err != nil {
			return err
		}
		if err := s.lockRules(ctx, tx, false); err != nil {
			return err
		}
		if err := s.applyRules(ctx, tx, rows, now); err != nil {
			return err
		}
		if err := s.readStored(ctx, tx, rows); err != nil {
			return err
		}
		for _, r := range rows {
			r.plan(agentID)
		}
		// The sightings of stored rows first, and the finding rows last,
		// so that the finding rows, which agents of a service share, are
		// locked for as short a time as can be.
		if err := s.upsertSightings(ctx, tx, agentID, rows, true); err != nil {
			return err
		}
		marker := agentID + "/" + strconv.FormatUint(b.Seq, 10)
		reached, err := s.upsertFindings(ctx, tx, rows, marker)
		if err != nil {
			return err
		}
		if err := s.upsertSightings(ctx, tx, agentID, rows, false); err != nil {
			return err
		}
		if err := s.queueReached(ctx, tx, reached, now); err != nil {
			return err
		}
		// Last: see updateSummary.
		if err := s.updateSummary(ctx, tx, rows); err != nil {
			return err
		}
		res.Updates = len(rows)
		res.Reached = reached
		return nil
	})
	if errors.Is(err, errDuplicate) {
		return IngestResult{Duplicate: true}, nil
	}
	if err != nil {
		return IngestResult{}, fmt.Errorf("store batch %d of agent %s: %w", b.Seq, agentID, err)
	}
	return res, nil
}

// errDuplicate rolls back the transaction of a batch stored before.
var errDuplicate = errors.New("duplicate batch")

// findingKey is the deduplication key of a finding row.
type findingKey struct {
	service, buildID, osv, pkg, symbol string
	function, file                     string
	line                               int
}

// findingRow is one finding row a batch upserts, with its sightings.
type findingRow struct {
	key            findingKey
	module         string
	version        string
	fixed          string
	scope          string
	status         report.Status
	hitsLowerBound bool
	stack          string // JSON
	firstSeen      int64
	lastSeen       int64
	firstReached   int64 // 0: not reached
	triage         rowTriage
	sightings      map[string]*sighting // by instance
	stored         *storedFinding       // nil: not stored yet
	hits           int64                // to add to the stored hits (plan)
	write          bool                 // the row needs writing (plan)
	narrow         bool                 // only its hits and last_seen do (plan)
	narrowLastSeen int64                // the last_seen a narrow update writes (plan)
	id             int64                // once upserted
}

// rowTriage is the triage a new row starts with.
type rowTriage struct {
	state, justification, note, by string
	at, expires                    *int64
	rule                           *int64
}

type sighting struct {
	instance, host, environment string
	labels, pids                string // JSON
	hits                        int64
	firstSeen, lastSeen         int64
	stored                      *storedSighting // nil: not stored yet
	write                       bool            // the sighting needs writing (plan)
}

// collectRows turns a checked batch into finding rows, merging rows with
// the same key (a key seen twice keeps the highest status, the widest
// times, and per instance the largest hits).
func collectRows(b *fleet.Batch, now time.Time) []*findingRow {
	byKey := make(map[findingKey]*findingRow)
	var rows []*findingRow
	add := func(r *findingRow, s *sighting) {
		if old := byKey[r.key]; old != nil {
			old.merge(r)
			r = old
		} else {
			byKey[r.key] = r
			rows = append(rows, r)
			r.sightings = make(map[string]*sighting)
		}
		if old := r.sightings[s.instance]; old != nil {
			old.hits = max(old.hits, s.hits)
			old.firstSeen = min(old.firstSeen, s.firstSeen)
			old.lastSeen = max(old.lastSeen, s.lastSeen)
		} else {
			r.sightings[s.instance] = s
		}
	}
	nowNano := now.UnixNano()
	for i := range b.Observations {
		o := &b.Observations[i]
		buildID := binaryKey(o.Binary)
		labels := jsonText(o.Labels, "{}")
		pids := jsonText(o.PIDs, "[]")
		for _, f := range o.Binary.Findings {
			base := findingRow{
				key:     findingKey{service: o.Service, buildID: buildID, osv: f.OSV},
				module:  f.Module,
				version: f.Version,
				fixed:   f.FixedVersion,
			}
			sight := func(r *findingRow, hits uint64) *sighting {
				return &sighting{instance: o.Instance, host: o.Host, environment: o.Environment,
					labels: labels, pids: pids, hits: int64(hits), firstSeen: r.firstSeen, lastSeen: r.lastSeen}
			}
			if len(f.Symbols) == 0 {
				r := base
				r.key.pkg = f.Module
				r.status = f.Status
				r.stack = "[]"
				r.firstSeen, r.lastSeen = nowNano, nowNano
				if f.Status == report.Reached {
					r.firstReached = nowNano
				}
				add(&r, sight(&r, 0))
				continue
			}
			for _, sym := range f.Symbols {
				r := base
				r.key.pkg, r.key.symbol = sym.Package, sym.Name
				r.scope = string(sym.Scope)
				r.status = sym.Status
				r.hitsLowerBound = sym.HitsLowerBound
				r.firstSeen, r.lastSeen = nowNano, nowNano
				if sym.FirstSeen != nil {
					r.firstSeen = min(r.firstSeen, sym.FirstSeen.UnixNano())
				}
				if sym.LastSeen != nil {
					r.lastSeen = max(r.lastSeen, sym.LastSeen.UnixNano())
				}
				if sym.Status == report.Reached {
					r.firstReached = nowNano
					if sym.FirstSeen != nil {
						r.firstReached = sym.FirstSeen.UnixNano()
					}
				}
				stack := jsonText(sym.Stack, "[]")
				if sym.Status != report.Reached || len(sym.Callsites) == 0 {
					r.stack = stack
					add(&r, sight(&r, sym.Hits))
					continue
				}
				// The stack goes to the callsite it passes through (the
				// first callsite when none matches).
				withStack := 0
				for i, c := range sym.Callsites {
					if stackHas(sym.Stack, c) {
						withStack = i
						break
					}
				}
				var attributed uint64
				for i, c := range sym.Callsites {
					rc := r
					rc.key.function, rc.key.file, rc.key.line = c.Function, c.File, c.Line
					rc.stack = "[]"
					if i == withStack {
						rc.stack = stack
					}
					add(&rc, sight(&rc, c.Hits))
					attributed += c.Hits
				}
				// One-shot mode records the first hit's callsite only: the
				// symbol's other hits have no recorded callsite, and go to
				// the row without one, so that the rows of a symbol add up
				// to its hits.
				if sym.Hits > attributed {
					rn := r
					rn.stack = "[]"
					add(&rn, sight(&rn, sym.Hits-attributed))
				}
			}
		}
	}
	return rows
}

// merge merges o, a row with the same key from the same batch, into r.
func (r *findingRow) merge(o *findingRow) {
	if o.status.Rank() > r.status.Rank() {
		r.status = o.status
	}
	r.hitsLowerBound = r.hitsLowerBound || o.hitsLowerBound
	if r.stack == "[]" {
		r.stack = o.stack
	}
	r.firstSeen = min(r.firstSeen, o.firstSeen)
	r.lastSeen = max(r.lastSeen, o.lastSeen)
	if o.firstReached != 0 && (r.firstReached == 0 || o.firstReached < r.firstReached) {
		r.firstReached = o.firstReached
	}
	if o.fixed != "" {
		r.fixed = o.fixed
	}
}

func stackHas(stack []report.Frame, c *report.Callsite) bool {
	for _, fr := range stack {
		if fr.Function == c.Function && fr.File == c.File && fr.Line == c.Line {
			return true
		}
	}
	return false
}

// binaryKey is the key of a binary within its service: its build ID, or
// "path:" and its path when it has none.
func binaryKey(b *report.Binary) string {
	if b.BuildID != "" {
		return b.BuildID
	}
	return "path:" + b.Path
}

func (s *Store) updateAgent(ctx context.Context, tx *sql.Tx, agentID string, b *fleet.Batch, now time.Time) error {
	// What the agent says of itself now is taken from the newest batch
	// only: an older one, arriving late, updates last_seen alone.
	newer := `CASE WHEN ? > last_seq THEN ? ELSE %s END`
	set := []string{"last_seen = CASE WHEN ? > last_seen THEN ? ELSE last_seen END"}
	args := []any{now.UnixNano(), now.UnixNano()}
	seq := int64(b.Seq)
	for _, c := range []struct {
		col string
		v   any
	}{
		{"hostname", b.Agent.Hostname},
		{"reach_version", b.Agent.ReachVersion},
		{"labels", jsonText(b.Agent.Labels, "{}")},
		{"processes", int64(b.Agent.Processes)},
		{"probes", int64(b.Agent.Probes)},
	} {
		if c.v == "" {
			// A sender that does not know (a host name it could not
			// read) leaves what is stored alone.
			continue
		}
		set = append(set, c.col+" = "+fmt.Sprintf(newer, c.col))
		args = append(args, seq, c.v)
	}
	if a := b.Applied; a != nil {
		at := now
		if !a.At.IsZero() {
			at = a.At
		}
		for _, c := range []struct {
			col string
			v   any
		}{
			{"applied_version", a.Version},
			{"applied_error", a.Error},
			{"applied_at", at.UnixNano()},
		} {
			set = append(set, c.col+" = "+fmt.Sprintf(newer, c.col))
			args = append(args, seq, c.v)
		}
	}
	set = append(set, "last_seq = CASE WHEN ? > last_seq THEN ? ELSE last_seq END")
	args = append(args, seq, seq, agentID)
	r, err := tx.ExecContext(ctx, s.rebind(`UPDATE agents SET `+strings.Join(set, ", ")+` WHERE id = ? AND revoked IS NULL`), args...)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("agent: %w", err)
	} else if n == 0 {
		return fmt.Errorf("agent %s: %w", agentID, ErrUnauthorized)
	}
	return nil
}

// upsertBinaries stores the batch's binaries that are new or changed
// (or last seen more than lastSeenStep ago).
func (s *Store) upsertBinaries(ctx context.Context, tx *sql.Tx, b *fleet.Batch, now time.Time) error {
	type key struct{ service, buildID string }
	seen := make(map[key]bool)
	var args []any
	// In key order: the order rows are locked in.
	obs := make([]*fleet.Observation, len(b.Observations))
	for i := range b.Observations {
		obs[i] = &b.Observations[i]
	}
	slices.SortFunc(obs, func(x, y *fleet.Observation) int {
		return cmp.Or(strings.Compare(x.Service, y.Service), strings.Compare(binaryKey(x.Binary), binaryKey(y.Binary)))
	})
	for _, o := range obs {
		k := key{o.Service, binaryKey(o.Binary)}
		if seen[k] {
			continue
		}
		seen[k] = true
		bin := o.Binary
		row := []any{k.service, k.buildID, bin.Path, bin.GoVersion, bin.MainModule, bin.MainVersion,
			boolInt(bin.Stripped), boolInt(bin.PIE), jsonText(bin.Modules, "[]"), now.UnixNano(), now.UnixNano()}
		var stored [7]any
		var lastSeen int64
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT path, go_version, main_module, main_version, stripped, pie, modules, last_seen
			FROM binaries WHERE service = ? AND build_id = ?`), k.service, k.buildID).
			Scan(&stored[0], &stored[1], &stored[2], &stored[3], &stored[4], &stored[5], &stored[6], &lastSeen)
		if err == nil && now.UnixNano() < lastSeen+int64(lastSeenStep) && sameValues(stored[:], row[2:9]) {
			continue
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("binaries: %w", err)
		}
		args = append(args, row...)
	}
	const cols = 11
	return s.execChunks(ctx, tx, args, cols, func(n int) string {
		return `INSERT INTO binaries (service, build_id, path, go_version, main_module, main_version, stripped, pie, modules, first_seen, last_seen) VALUES ` +
			values(n, cols) + ` ON CONFLICT (service, build_id) DO UPDATE SET path = excluded.path, go_version = excluded.go_version,
			main_module = excluded.main_module, main_version = excluded.main_version, stripped = excluded.stripped, pie = excluded.pie,
			modules = excluded.modules, last_seen = CASE WHEN excluded.last_seen > binaries.last_seen THEN excluded.last_seen ELSE binaries.last_seen END`
	})
}

// sameValues reports whether the values scanned (strings and integers)
// are those of want.
func sameValues(scanned, want []any) bool {
	for i, v := range scanned {
		switch v := v.(type) {
		case []byte:
			if s, ok := want[i].(string); !ok || s != string(v) {
				return false
			}
		default:
			if v != want[i] {
				return false
			}
		}
	}
	return true
}

// upsertVulns stores the batch's OSV entries that are new or changed.
func (s *Store) upsertVulns(ctx context.Context, tx *sql.Tx, b *fleet.Batch) error {
	type vuln struct{ summary, aliases string }
	vulns := make(map[string]vuln)
	var osvs []string
	for i := range b.Observations {
		for _, f := range b.Observations[i].Binary.Findings {
			if _, ok := vulns[f.OSV]; !ok {
				osvs = append(osvs, f.OSV)
			}
			v := vulns[f.OSV]
			if f.Summary != "" {
				v.summary = f.Summary
			}
			if len(f.Aliases) > 0 {
				v.aliases = jsonText(f.Aliases, "[]")
			}
			vulns[f.OSV] = v
		}
	}
	slices.Sort(osvs) // the order rows are locked in
	stored := make(map[string]vuln)
	for start := 0; start < len(osvs); {
		n := min(len(osvs)-start, 500)
		args := make([]any, n)
		for i, osv := range osvs[start : start+n] {
			args[i] = osv
		}
		start += n
		rs, err := tx.QueryContext(ctx, s.rebind(`SELECT osv, summary, aliases FROM vulns WHERE osv IN (`+values(1, n)[1:]), args...)
		if err != nil {
			return fmt.Errorf("vulns: %w", err)
		}
		for rs.Next() {
			var osv string
			var v vuln
			if err := rs.Scan(&osv, &v.summary, &v.aliases); err != nil {
				rs.Close()
				return fmt.Errorf("vulns: %w", err)
			}
			stored[osv] = v
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("vulns: %w", err)
		}
	}
	var args []any
	for _, osv := range osvs {
		v := vulns[osv]
		old, ok := stored[osv]
		if ok && (v.summary == "" || v.summary == old.summary) && (v.aliases == "" || v.aliases == old.aliases) {
			continue
		}
		if v.aliases == "" {
			v.aliases = "[]"
		}
		args = append(args, osv, v.summary, v.aliases)
	}
	const cols = 3
	err := s.execChunks(ctx, tx, args, cols, func(n int) string {
		return `INSERT INTO vulns (osv, summary, aliases) VALUES ` + values(n, cols) + ` ON CONFLICT (osv) DO UPDATE SET
			summary = CASE WHEN excluded.summary <> '' THEN excluded.summary ELSE vulns.summary END,
			aliases = CASE WHEN excluded.aliases <> '[]' THEN excluded.aliases ELSE vulns.aliases END`
	})
	if err != nil {
		return fmt.Errorf("vulns: %w", err)
	}
	return nil
}

// applyRules sets the triage each row starts with, should it be new: the
// most specific triage rule's that matches it and has not expired, else
// "affected" by reach when it is reached.
func (s *Store) applyRules(ctx context.Context, tx *sql.Tx, rows []*findingRow, now time.Time) error {
	services := make(map[string]bool)
	var args []any
	for _, r := range rows {
		if !services[r.key.service] {
			services[r.key.service] = true
			args = append(args, r.key.service)
		}
	}
	rules := make(map[[2]string]*rowTriage)
	if len(args) > 0 {
		args = append(args, now.UnixNano())
		q := `SELECT id, service, osv, state, justification, note, by_user, at, expires FROM triage_rules
			WHERE (service = '' OR service IN (` + values(1, len(args)-1)[1:] + `) AND (expires IS NULL OR expires > ?)`
		rs, err := tx.QueryContext(ctx, s.rebind(q), args...)
		if err != nil {
			return fmt.Errorf("triage rules: %w", err)
		}
		defer rs.Close()
		for rs.Next() {
			var t rowTriage
			var id, at int64
			var service, osv string
			var expires sql.NullInt64
			if err := rs.Scan(&id, &service, &osv, &t.state, &t.justification, &t.note, &t.by, &at, &expires); err != nil {
				return fmt.Errorf("triage rules: %w", err)
			}
			t.at, t.rule = &at, &id
			if expires.Valid {
				t.expires = &expires.Int64
			}
			rules[[2]string{service, osv}] = &t
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("triage rules: %w", err)
		}
	}
	nowNano := now.UnixNano()
	for _, r := range rows {
		k := r.key
		switch t := firstRule(rules, [2]string{k.service, k.osv}, [2]string{"", k.osv}, [2]string{k.service, ""}); {
		case t != nil:
			r.triage = *t
		case r.status == report.Reached:
			r.triage = rowTriage{state: StateAffected, by: "reach", at: &nowNano}
		}
	}
	return nil
}

func firstRule(rules map[[2]string]*rowTriage, keys ...[2]string) *rowTriage {
	for _, k := range keys {
		if t := rules[k]; t != nil {
			return t
		}
	}
	return nil
}

// queueReached queues each reached finding for each sink.
func (s *Store) queueReached(ctx context.Context, tx *sql.Tx, reached []int64, now time.Time) error {
	var args []any
	for _, id := range reached {
		for _, sink := range s.opts.Sinks {
			args = append(args, sink, id, now.UnixNano())
		}
	}
	const cols = 3
	return s.execChunks(ctx, tx, args, cols, func(n int) string {
		return `INSERT INTO outbox (sink, finding_id, created) VALUES ` + values(n, cols)
	})
}
