package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestDeliveries queues newly reached findings for two sinks and delivers
// them from two stores on one database: a claimed row goes to one store
// only, a failed one is pending again with its attempt counted, a
// delivered one never comes back.
func TestDeliveries(t *testing.T) {
	ctx := context.Background()
	opts := Options{Sinks: []string{"otlp", "webhook"}}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			s1, s2 := openTest(t, dsn, opts), openTest(t, dsn, opts)
			ag := enrol(t, s1, "h1")
			res := mustIngest(t, s1, ag.AgentID, batch(ag.AgentID, 1, "i1", "h1", "api",
				reached("GO-1", "Parse", t0, "main.a", 1), reached("GO-2", "Parse", t0), linked("GO-3", "F")))
			if len(res.Reached) != 2 {
				t.Fatalf("reached %v, want 2 findings", res.Reached)
			}

			got, err := s1.PendingDeliveries(ctx, "otlp", 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Sink != "otlp" || got[0].Finding.ID != res.Reached[0] || got[0].Finding.OSV != "GO-1" ||
				got[0].Finding.Service != "api" || got[0].Finding.Status != "reached" || got[0].Attempts != 0 {
				t.Fatalf("PendingDeliveries(otlp, 1) = %+v, want GO-1's finding", got)
			}
			first := got[0].ID
			// s2 does not get what s1 claimed; s1 gets it again.
			other, err := s2.PendingDeliveries(ctx, "otlp", 10)
			if err != nil || len(other) != 1 || other[0].Finding.OSV != "GO-2" {
				t.Fatalf("the other store's pending = %+v, %v; want GO-2 only", other, err)
			}
			again, err := s1.PendingDeliveries(ctx, "otlp", 10)
			if err != nil || len(again) != 1 || again[0].ID != first {
				t.Fatalf("the claiming store's pending = %+v, %v; want its own claim", again, err)
			}

			if err := s1.MarkDelivered(ctx, first, errors.New("collector down\x00\xff")); err != nil {
				t.Fatal(err)
			}
			// Released: s2 gets it, with its own claim (GO-2).
			retry, err := s2.PendingDeliveries(ctx, "otlp", 10)
			if err != nil || len(retry) != 2 || retry[0].ID != first || retry[0].Attempts != 1 || retry[1].ID != other[0].ID {
				t.Fatalf("after a failure: %+v, %v; want it pending with 1 attempt, and GO-2", retry, err)
			}
			if n := count(t, s1, "outbox", "last_error <> ''"); n != 1 {
				t.Errorf("last error not recorded")
			}
			for _, id := range []int64{first, other[0].ID} {
				if err := s2.MarkDelivered(ctx, id, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []*Store{s1, s2} {
				if left, err := s.PendingDeliveries(ctx, "otlp", 10); err != nil || len(left) != 0 {
					t.Errorf("after delivery: %+v, %v; want none", left, err)
				}
			}
			if hooks, err := s1.PendingDeliveries(ctx, "webhook", 10); err != nil || len(hooks) != 2 {
				t.Errorf("webhook deliveries %+v, %v; want both findings", hooks, err)
			}
			if err := s1.MarkDelivered(ctx, 9999, nil); !errors.Is(err, ErrNotFound) {
				t.Errorf("MarkDelivered of no delivery: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestDeliveriesConcurrent claims from 4 stores at once: every delivery
// goes to exactly one.
func TestDeliveriesConcurrent(t *testing.T) {
	ctx := context.Background()
	opts := Options{Sinks: []string{"webhook"}}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			var stores []*Store
			for range 4 {
				stores = append(stores, openTest(t, dsn, opts))
			}
			ag := enrol(t, stores[0], "h1")
			for seq := range 5 {
				mustIngest(t, stores[0], ag.AgentID, batch(ag.AgentID, uint64(seq+1), "i1", "h1", "api",
					reached(fmt.Sprintf("GO-%d", seq), "Parse", t0)))
			}
			claimed := make([][]Delivery, len(stores))
			errs := make([]error, len(stores))
			done := make(chan int)
			for i, s := range stores {
				go func() {
					claimed[i], errs[i] = s.PendingDeliveries(ctx, "webhook", 5)
					done <- i
				}()
			}
			for range stores {
				<-done
			}
			seen := map[int64]int{}
			for i := range stores {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				for _, d := range claimed[i] {
					seen[d.ID]++
				}
			}
			if len(seen) != 5 {
				t.Errorf("%d deliveries claimed, want 5", len(seen))
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("delivery %d claimed by %d stores", id, n)
				}
			}
		})
	}
}
