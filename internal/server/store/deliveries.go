package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// ClaimFor is how long PendingDeliveries hides the rows it returns from
// other servers (other Stores) on the database: the time to deliver them
// and record it with MarkDelivered. A server that stops meanwhile leaves
// its rows to the others once the claim ends.
const ClaimFor = time.Minute

// Delivery is a newly reached finding queued for a sink.
type Delivery struct {
	ID       int64
	Sink     string
	Attempts int // failed attempts so far
	Finding  Finding
	Created  time.Time
}

// PendingDeliveries returns up to n (at most 1,000) undelivered
// newly-reached findings for sink, oldest first, and claims them for
// ClaimFor: until then, or until MarkDelivered, no other Store returns
// them, while this one does again (so that its deliverer keeps its own
// backoff). Delivery is at least once: a claim that ends undelivered is
// returned again.
func (s *Store) PendingDeliveries(ctx context.Context, sink string, n int) ([]Delivery, error) {
	if n <= 0 {
		return nil, nil
	}
	n = min(n, 1000)
	now := time.Now().UnixNano()
	until := now + int64(ClaimFor)
	free := `delivered IS NULL AND (claimed_until IS NULL OR claimed_until < ? OR claim = ?)`
	rows, err := s.db.QueryContext(ctx, s.rebind(`UPDATE outbox SET claim = ?, claimed_until = ?
		WHERE id IN (SELECT id FROM outbox WHERE sink = ? AND `+free+` ORDER BY id LIMIT ?) AND `+free+`
		RETURNING id, sink, attempts, finding_id, created`),
		s.claimer, until, sink, now, s.claimer, n, now, s.claimer)
	if err != nil {
		return nil, fmt.Errorf("deliveries for %s: %w", sink, s.wrapUnavailable(err))
	}
	defer rows.Close()
	var ds []Delivery
	for rows.Next() {
		var d Delivery
		var attempts, created int64
		if err := rows.Scan(&d.ID, &d.Sink, &attempts, &d.Finding.ID, &created); err != nil {
			return nil, fmt.Errorf("deliveries for %s: %w", sink, err)
		}
		d.Attempts, d.Created = int(attempts), time.Unix(0, created)
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deliveries for %s: %w", sink, s.wrapUnavailable(err))
	}
	rows.Close()
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	for i := range ds {
		f, err := s.Finding(ctx, ds[i].Finding.ID)
		if err != nil {
			return nil, fmt.Errorf("deliveries for %s: delivery %d: %w", sink, ds[i].ID, err)
		}
		ds[i].Finding = *f
	}
	return ds, nil
}

// MarkDelivered records the outcome of delivering d: deliveryErr nil, it
// is delivered and never returned again; else its attempts and last error
// are recorded and it is pending again (its claim is released, for the
// deliverer's backoff to decide when to try again).
func (s *Store) MarkDelivered(ctx context.Context, id int64, deliveryErr error) error {
	now := time.Now().UnixNano()
	q, args := `UPDATE outbox SET delivered = ?, claimed_until = NULL, claim = '' WHERE id = ?`, []any{now, id}
	if deliveryErr != nil {
		msg := deliveryErr.Error()
		if len(msg) > MaxString {
			msg = msg[:MaxString]
		}
		q = `UPDATE outbox SET attempts = attempts + 1, last_error = ?, claimed_until = NULL, claim = '' WHERE id = ?`
		args = []any{validUTF8(msg), id}
	}
	r, err := s.db.ExecContext(ctx, s.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", id, s.wrapUnavailable(err))
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("delivery %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return nil
}
