package store

import (
	"context"
	"errors"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// errTODO marks what the store work has not written yet.
var errTODO = errors.New("store: not implemented yet")

// Config returns the current configuration (version 0, empty, before any).
func (s *Store) Config(ctx context.Context) (fleet.Config, error) { return fleet.Config{}, errTODO }

// SetConfig stores cfg as the next version and returns it.
func (s *Store) SetConfig(ctx context.Context, cfg fleet.Config, by string) (fleet.Config, error) {
	return fleet.Config{}, errTODO
}

// SetTriage applies a triage decision and returns the number of findings
// it changed.
func (s *Store) SetTriage(ctx context.Context, req TriageRequest) (int, error) { return 0, errTODO }

// PendingDeliveries returns up to n undelivered newly-reached findings
// for sink, oldest first; MarkDelivered records a delivery attempt.
func (s *Store) PendingDeliveries(ctx context.Context, sink string, n int) ([]Delivery, error) {
	return nil, errTODO
}

// MarkDelivered records the outcome of delivering d (err nil: delivered).
func (s *Store) MarkDelivered(ctx context.Context, id int64, deliveryErr error) error { return errTODO }

// Delivery is a newly reached finding queued for a sink.
type Delivery struct {
	ID       int64
	Sink     string
	Attempts int
	Finding  Finding
	Created  time.Time
}
