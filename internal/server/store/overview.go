package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// TimelineDays is how many days the overview's timeline covers.
const TimelineDays = 90

const day = int64(24 * time.Hour)

// Overview summarizes the fleet. f.Limit bounds Ranked (0: DefaultLimit);
// the counts cover every matching finding.
//
// It is three queries, run at once on connections of their own: the
// ranking, which also counts findings by status, the services and hosts,
// and the timeline. The ranking aggregates in the database, first per
// OSV and service, then per OSV, so that one row per OSV entry comes
// back. The first step reads the summary table service_vulns, kept by
// Ingest, when it answers f (no filter, or by service or OSV), so that
// the default page reads a row per service and OSV, not per finding;
// else the findings (over the covering index findings_rank of migration
// 0002 on SQLite). See dashboard's BenchmarkOverview.
func (s *Store) Overview(ctx context.Context, f Filter) (*Overview, error) {
	w, err := s.filterWhere(f, true)
	if err != nil {
		return nil, err
	}
	o := &Overview{Findings: map[report.Status]int{}, Vulns: map[report.Status]int{}}
	var wg sync.WaitGroup
	var errs [3]error
	wg.Go(func() { errs[0] = s.rankVulns(ctx, w, f, summaryAnswers(f), o) })
	wg.Go(func() { errs[1] = s.overviewCounts(ctx, f, o) })
	wg.Go(func() { o.Timeline, errs[2] = s.timeline(ctx, w, time.Now()) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("store %s: overview: %w", s.dsn, err)
	}
	return o, nil
}

// rankVulns fills o.Ranked, o.Vulns, o.Findings and o.Services. The
// findings are grouped by OSV and service once (g, which both dialects
// materialize, being used twice), then by OSV (rows of kind 1), and the
// services counted (the one row of kind 0), so that a filter is
// evaluated once for all of them. With summary (when the summary table
// answers f: no filter, or by service or OSV), g is the summary's rows,
// grouped at write time.
func (s *Store) rankVulns(ctx context.Context, w *where, f Filter, summary bool, o *Overview) error {
	g := `SELECT ` + summaryAggregates + ` FROM findings f` + w.String() + ` GROUP BY f.osv, f.service`
	if summary {
		g = `SELECT ` + summaryRows + ` FROM service_vulns f` + w.String()
	}
	q := `WITH g AS (` + g + `)
SELECT 1, g.osv, MAX(g.r),
  SUM(CASE WHEN g.r = 4 THEN 1 ELSE 0 END),
  SUM(CASE WHEN g.r IN (2, 3) THEN 1 ELSE 0 END),
  MIN(g.fr), MAX(g.ls), SUM(g.n4), SUM(g.n3), SUM(g.n2), SUM(g.n1)
FROM g GROUP BY g.osv
UNION ALL
SELECT 0, '', COUNT(DISTINCT g.service), 0, 0, NULL, 0, 0, 0, 0, 0 FROM g`
	rows, err := s.db.QueryContext(ctx, s.rebind(q), w.args...)
	if err != nil {
		return s.readErr(err)
	}
	defer rows.Close()
	var ranked []VulnRank
	for rows.Next() {
		var v VulnRank
		var kind, rank, last int64
		var first sql.NullInt64
		var n [4]int
		if err := rows.Scan(&kind, &v.OSV, &rank, &v.ReachedServices, &v.LinkedServices, &first, &last, &n[0], &n[1], &n[2], &n[3]); err != nil {
			return err
		}
		if kind == 0 {
			o.Services = int(rank)
			continue
		}
		v.Status = statusOfRank(rank)
		v.FirstReached = nullTime(first)
		v.LastSeen = fromNanos(last)
		o.Vulns[v.Status]++
		for i, st := range []report.Status{report.Reached, report.NotWatched, report.Linked, report.Imported} {
			o.Findings[st] += n[i]
		}
		ranked = append(ranked, v)
	}
	if err := rows.Err(); err != nil {
		return s.readErr(err)
	}
	rows.Close()
	slices.SortFunc(ranked, func(a, b VulnRank) int {
		return cmp.Or(
			cmp.Compare(b.ReachedServices, a.ReachedServices),
			cmp.Compare(b.LinkedServices, a.LinkedServices),
			cmp.Compare(b.Status.Rank(), a.Status.Rank()),
			b.LastSeen.Compare(a.LastSeen),
			cmp.Compare(a.OSV, b.OSV))
	})
	n, off := limit(f)
	if off >= len(ranked) {
		return nil
	}
	o.Ranked = ranked[off:min(off+n, len(ranked))]
	return s.addVulnInfo(ctx, o.Ranked)
}

// addVulnInfo sets the summary and aliases of each ranked entry.
func (s *Store) addVulnInfo(ctx context.Context, vs []VulnRank) error {
	return eachIn(ctx, s, vs, func(v *VulnRank) string { return v.OSV }, `SELECT osv, summary, aliases FROM vulns WHERE osv`,
		func(rows *sql.Rows, of map[string]*VulnRank) error {
			var osv, summary, aliases string
			if err := rows.Scan(&osv, &summary, &aliases); err != nil {
				return err
			}
			if v := of[osv]; v != nil {
				v.Summary = summary
				_ = json.Unmarshal([]byte(aliases), &v.Aliases)
			}
			return nil
		})
}

// eachIn runs q, which ends in "WHERE column", with " IN (...)" of the
// keys of xs added, and calls fn for each row, with the elements of xs by
// key.
func eachIn[T any, K comparable](ctx context.Context, s *Store, xs []T, key func(*T) K, q string, fn func(rows *sql.Rows, of map[K]*T) error) error {
	if len(xs) == 0 {
		return nil
	}
	of := make(map[K]*T, len(xs))
	args := make([]any, 0, len(xs))
	for i := range xs {
		k := key(&xs[i])
		of[k] = &xs[i]
		args = append(args, k)
	}
	return s.each(ctx, q+" IN (?"+strings.Repeat(", ?", len(xs)-1)+")", args, func(rows *sql.Rows) error { return fn(rows, of) })
}

// overviewCounts counts the hosts and agents of o. The hosts are those
// where a finding of w was seen, in f's environment if it has one.
func (s *Store) overviewCounts(ctx context.Context, f Filter, o *Overview) error {
	env := f.Environment
	f.Environment = ""
	other, err := s.filterWhere(f, true)
	if err != nil {
		return err
	}
	hosts := &where{}
	if env != "" {
		hosts.add("s.environment = ?", env)
	}
	if len(other.conds) > 0 {
		hosts.add(`s.finding_id IN (SELECT f.id FROM findings f`+other.String()+`)`, other.args...)
	}
	if err := s.db.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM (SELECT DISTINCT s.host FROM sightings s`+hosts.String()+`) x`), hosts.args...).Scan(&o.Hosts); err != nil {
		return s.readErr(err)
	}
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM agents WHERE revoked IS NULL`).Scan(&o.Agents)
	return s.readErr(err)
}

// timeline counts the findings of w first reached on each of the last
// TimelineDays days up to now, oldest first, days without any included.
func (s *Store) timeline(ctx context.Context, w *where, now time.Time) ([]DayCount, error) {
	today := now.UTC().UnixNano() / day
	from := today - TimelineDays + 1
	cond := *w
	cond.add("f.first_reached >= ?", from*day)
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT f.first_reached / `+fmt.Sprint(day)+
		`, COUNT(*) FROM findings f`+cond.String()+` GROUP BY f.first_reached / `+fmt.Sprint(day)), cond.args...)
	if err != nil {
		return nil, s.readErr(err)
	}
	defer rows.Close()
	out := make([]DayCount, TimelineDays)
	for i := range out {
		out[i].Day = fromNanos((from + int64(i)) * day)
	}
	for rows.Next() {
		var d int64
		var n int
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		if i := d - from; i >= 0 && i < TimelineDays {
			out[i].Count += n
		}
	}
	return out, s.readErr(rows.Err())
}

// Services lists the services, by name: those with a matching finding,
// and, when f filters nothing, also those with binaries but no finding.
func (s *Store) Services(ctx context.Context, f Filter) ([]ServiceSummary, error) {
	w, err := s.filterWhere(f, true)
	if err != nil {
		return nil, err
	}
	byName := map[string]*ServiceSummary{}
	get := func(name string) *ServiceSummary {
		if byName[name] == nil {
			byName[name] = &ServiceSummary{Name: name, Counts: map[report.Status]int{}}
		}
		return byName[name]
	}
	// Counted over the index findings_status alone; the last seen time
	// is the binaries'.
	err = s.each(ctx, `SELECT f.service, f.status_rank, COUNT(*) FROM findings f`+w.String()+
		` GROUP BY f.service, f.status_rank`, w.args, func(rows *sql.Rows) error {
		var name string
		var rank int64
		var n int
		if err := rows.Scan(&name, &rank, &n); err != nil {
			return err
		}
		get(name).Counts[statusOfRank(rank)] += n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: services: %w", s.dsn, err)
	}
	filtered := len(w.conds) > 0 && !(len(w.conds) == 1 && f.Service != "")
	err = s.each(ctx, `SELECT b.service, COUNT(*), MAX(b.last_seen) FROM binaries b GROUP BY b.service`, nil, func(rows *sql.Rows) error {
		var name string
		var n int
		var last int64
		if err := rows.Scan(&name, &n, &last); err != nil {
			return err
		}
		if byName[name] == nil && (filtered || f.Service != "" && name != f.Service) {
			return nil
		}
		ss := get(name)
		ss.Binaries = n
		if t := fromNanos(last); t.After(ss.LastSeen) {
			ss.LastSeen = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: services: %w", s.dsn, err)
	}
	err = s.each(ctx, `SELECT DISTINCT f.service, s.environment FROM sightings s JOIN findings f ON f.id = s.finding_id
WHERE s.environment <> ''`, nil, func(rows *sql.Rows) error {
		var name, env string
		if err := rows.Scan(&name, &env); err != nil {
			return err
		}
		if ss := byName[name]; ss != nil {
			ss.Environments = addSorted(ss.Environments, env)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: services: %w", s.dsn, err)
	}
	out := make([]ServiceSummary, 0, len(byName))
	for _, ss := range byName {
		out = append(out, *ss)
	}
	slices.SortFunc(out, func(a, b ServiceSummary) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// each runs q and calls fn for each row.
func (s *Store) each(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return s.readErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return s.readErr(rows.Err())
}

// Service returns one service: its binaries, newest first, the counts of
// its findings that match f by status, and those findings (f.Limit of
// them).
func (s *Store) Service(ctx context.Context, name string, f Filter) (*Service, error) {
	f.Service = name
	w, err := s.filterWhere(f, true)
	if err != nil {
		return nil, err
	}
	svc := &Service{Name: name, Counts: map[report.Status]int{}}
	err = s.each(ctx, `SELECT build_id, path, go_version, main_module, main_version, stripped, pie, modules,
  first_seen, last_seen FROM binaries WHERE service = ? ORDER BY last_seen DESC, build_id`, []any{name}, func(rows *sql.Rows) error {
		var b Binary
		var stripped, pie, first, last int64
		var mods string
		if err := rows.Scan(&b.BuildID, &b.Path, &b.GoVersion, &b.MainModule, &b.MainVersion, &stripped, &pie, &mods, &first, &last); err != nil {
			return err
		}
		b.Stripped, b.PIE = stripped != 0, pie != 0
		b.FirstSeen, b.LastSeen = fromNanos(first), fromNanos(last)
		_ = json.Unmarshal([]byte(mods), &b.Modules)
		svc.Binaries = append(svc.Binaries, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: service %s: %w", s.dsn, name, err)
	}
	err = s.each(ctx, `SELECT f.status_rank, COUNT(*) FROM findings f`+w.String()+` GROUP BY f.status_rank`, w.args, func(rows *sql.Rows) error {
		var rank int64
		var n int
		if err := rows.Scan(&rank, &n); err != nil {
			return err
		}
		svc.Counts[statusOfRank(rank)] += n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: service %s: %w", s.dsn, name, err)
	}
	if svc.Findings, err = s.Findings(ctx, f); err != nil {
		return nil, err
	}
	if len(svc.Binaries) == 0 && len(svc.Findings) == 0 {
		var n int
		if err := s.db.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM findings WHERE service = ?`), name).Scan(&n); err != nil {
			return nil, fmt.Errorf("store %s: service %s: %w", s.dsn, name, s.readErr(err))
		}
		if n == 0 {
			return nil, fmt.Errorf("service %s: %w", name, ErrNotFound)
		}
	}
	return svc, nil
}

// Agents lists the agents, most recently seen first.
func (s *Store) Agents(ctx context.Context) ([]Agent, error) {
	var out []Agent
	err := s.each(ctx, `SELECT id, hostname, reach_version, labels, created, last_seen, last_seq,
  processes, probes, applied_version, applied_error, applied_at, revoked
FROM agents ORDER BY last_seen DESC, id`, nil, func(rows *sql.Rows) error {
		var a Agent
		var labels string
		var created, last, seq int64
		var appliedAt, revoked sql.NullInt64
		if err := rows.Scan(&a.ID, &a.Hostname, &a.ReachVersion, &labels, &created, &last, &seq,
			&a.Processes, &a.Probes, &a.AppliedVersion, &a.AppliedError, &appliedAt, &revoked); err != nil {
			return err
		}
		_ = json.Unmarshal([]byte(labels), &a.Labels)
		a.Created, a.LastSeen, a.LastSeq = fromNanos(created), fromNanos(last), uint64(seq)
		a.AppliedAt = nullTime(appliedAt)
		a.Revoked = revoked.Valid
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: agents: %w", s.dsn, err)
	}
	return out, nil
}

// ConfigAgents lists every agent's applied version and error (revoked
// agents left out), by hostname.
func (s *Store) ConfigAgents(ctx context.Context) ([]ConfigAgent, error) {
	var out []ConfigAgent
	err := s.each(ctx, `SELECT id, hostname, applied_version, applied_error, applied_at FROM agents
WHERE revoked IS NULL ORDER BY hostname, id`, nil, func(rows *sql.Rows) error {
		var a ConfigAgent
		var at sql.NullInt64
		if err := rows.Scan(&a.AgentID, &a.Hostname, &a.Version, &a.Error, &at); err != nil {
			return err
		}
		a.At = nullTime(at)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: config agents: %w", s.dsn, err)
	}
	return out, nil
}
