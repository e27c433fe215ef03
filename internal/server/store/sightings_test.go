package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSightings(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "reach.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, r := range []struct {
		finding  int64
		instance string
		host     string
		labels   string
		pids     string
		first    time.Time
	}{
		{7, "b", "host-b", `{"k8s.pod.name":"api-1"}`, `[42]`, t0.Add(time.Minute)},
		{7, "a", "host-a", `{}`, `[1,2]`, t0},
		{8, "c", "host-c", `{}`, `[]`, t0},
	} {
		_, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO sightings (finding_id, instance, agent_id, host, environment, labels, pids, hits, first_seen, last_seen)
			VALUES (?, ?, 'agent', ?, 'prod', ?, ?, 3, ?, ?)`), r.finding, r.instance, r.host, r.labels, r.pids, r.first.UnixNano(), r.first.UnixNano())
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Sightings(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Host != "host-a" || got[1].Host != "host-b" {
		t.Fatalf("sightings = %+v, want host-a then host-b", got)
	}
	if b := got[1]; b.Labels["k8s.pod.name"] != "api-1" || !slices.Equal(b.PIDs, []int{42}) || b.Hits != 3 || b.Environment != "prod" || !b.FirstSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("second sighting = %+v", b)
	}
	if got, err := s.Sightings(ctx, 99); err != nil || len(got) != 0 {
		t.Errorf("sightings of an unknown finding = %v, %v", got, err)
	}
}
