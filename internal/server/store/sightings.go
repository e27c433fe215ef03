package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Sighting is where a finding was seen: one counting instance
// (fleet.Observation) on one host.
type Sighting struct {
	Instance    string
	AgentID     string
	Host        string
	Environment string
	// Labels are the observation's labels: OpenTelemetry resource
	// attributes where they apply (container.id, k8s.pod.name, ...).
	Labels    map[string]string
	PIDs      []int
	Hits      uint64 // the instance's largest total
	FirstSeen time.Time
	LastSeen  time.Time
}

// Sightings returns where finding id was seen, first seen first.
func (s *Store) Sightings(ctx context.Context, id int64) ([]Sighting, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT instance, agent_id, host, environment, labels, pids, hits, first_seen, last_seen
		FROM sightings WHERE finding_id = ? ORDER BY first_seen, instance`), id)
	if err != nil {
		return nil, s.sightingsErr(id, err)
	}
	defer rows.Close()
	var out []Sighting
	for rows.Next() {
		var (
			sg           Sighting
			labels, pids string
			hits         int64
			first, last  int64
		)
		if err := rows.Scan(&sg.Instance, &sg.AgentID, &sg.Host, &sg.Environment, &labels, &pids, &hits, &first, &last); err != nil {
			return nil, s.sightingsErr(id, err)
		}
		if err := json.Unmarshal([]byte(labels), &sg.Labels); err != nil {
			return nil, fmt.Errorf("sightings of finding %d: labels: %w", id, err)
		}
		if err := json.Unmarshal([]byte(pids), &sg.PIDs); err != nil {
			return nil, fmt.Errorf("sightings of finding %d: pids: %w", id, err)
		}
		sg.Hits = uint64(max(hits, 0))
		sg.FirstSeen = time.Unix(0, first).UTC()
		sg.LastSeen = time.Unix(0, last).UTC()
		out = append(out, sg)
	}
	if err := rows.Err(); err != nil {
		return nil, s.sightingsErr(id, err)
	}
	return out, nil
}

// sightingsErr wraps an error of the sightings query of finding id, as
// ErrUnavailable when the database is not there.
func (s *Store) sightingsErr(id int64, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("store %s: sightings of finding %d: %w: %v", s.dsn, id, ErrUnavailable, err)
	}
	return fmt.Errorf("store %s: sightings of finding %d: %w", s.dsn, id, err)
}
