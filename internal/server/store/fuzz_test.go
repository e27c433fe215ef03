package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"

	"github.com/reach-sca/reach/internal/fleet"
	"testing"
)

// FuzzIngestBatch decodes a batch as the server does and ingests it into
// SQLite: Ingest must not panic, and either rejects the batch
// (ErrInvalid, ErrForbidden) storing nothing, or stores it.
func FuzzIngestBatch(f *testing.F) {
	for _, b := range [][]byte{
		mustJSON(batch("AGENT", 1, "i1", "h1", "api", reached("GO-1", "Parse", t0, "main.a", 3, "main.b", 4), linked("GO-2", "Compose"))),
		mustJSON(batch("AGENT", 2, "i2", "h2", "", linked("GO-2", "Compose"))),
		[]byte(`{"agent_id":"AGENT","seq":3,"observations":[{"instance":"i","host":"h","binary":{"path":"/x","findings":[{"osv":"GO-3","module":"m","status":"imported"}]}}]}`),
		[]byte(`{"agent_id":"AGENT","seq":4,"applied":{"version":2,"error":"bad target"}}`),
		[]byte(`{"agent_id":"AGENT","seq":0}`),
	} {
		f.Add(b)
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), Options{Sinks: []string{"otlp"}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	ag := enrol(f, s, "h")
	f.Fuzz(func(t *testing.T, data []byte) {
		var b fleet.Batch
		if err := json.Unmarshal(data, &b); err != nil {
			return // the HTTP layer answers 400
		}
		if b.AgentID == "AGENT" {
			b.AgentID = ag.AgentID
		}
		before := counts(t, s)
		res, err := s.Ingest(ctx, ag.AgentID, &b)
		after := counts(t, s)
		switch {
		case errors.Is(err, ErrInvalid) || errors.Is(err, ErrForbidden):
			for table, n := range before {
				if after[table] != n {
					t.Fatalf("rejected batch (%v) changed %s: %d rows, was %d", err, table, after[table], n)
				}
			}
		case err != nil:
			t.Fatalf("Ingest: %v (neither rejected nor stored)", err)
		case res.Duplicate:
			if after["batches"] != before["batches"] || after["findings"] != before["findings"] {
				t.Fatalf("duplicate batch stored rows: %v, was %v", after, before)
			}
		default:
			if after["batches"] != before["batches"]+1 || res.Updates < after["findings"]-before["findings"] {
				t.Fatalf("stored batch: %+v, rows %v, was %v", res, after, before)
			}
		}
	})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
