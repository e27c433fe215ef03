package store

import (
	"context"
	"errors"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
)

// errTODO marks what the store work has not written yet.
var errTODO = errors.New("store: not implemented yet")

// The methods below are the contract the HTTP layer, the dashboard and the
// exports are written against. (Bodies are filled in by the store work.)

// CreateEnrolToken makes an enrolment token; only its hash is kept.
func (s *Store) CreateEnrolToken(ctx context.Context, name string, expires *time.Time) (token string, err error) {
	return "", errTODO
}

// CreateAdminToken makes an admin token; only its hash is kept.
func (s *Store) CreateAdminToken(ctx context.Context, name string) (token string, err error) {
	return "", errTODO
}

// AdminToken reports the name of the admin token, or ErrUnauthorized.
func (s *Store) AdminToken(ctx context.Context, token string) (name string, err error) {
	return "", errTODO
}

// Secret returns the named server secret, creating it at random the first
// time (the same value for every server on the database).
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) { return nil, errTODO }

// Enrol makes a new agent with an enrolment token.
func (s *Store) Enrol(ctx context.Context, enrolToken string, req fleet.EnrolRequest) (fleet.EnrolResponse, error) {
	return fleet.EnrolResponse{}, errTODO
}

// AgentByToken returns the agent whose token this is, or ErrUnauthorized.
func (s *Store) AgentByToken(ctx context.Context, token string) (*Agent, error) { return nil, errTODO }

// Ingest stores a batch from agent agentID (ErrForbidden when the batch
// names another agent), at most once per (agent, seq).
func (s *Store) Ingest(ctx context.Context, agentID string, b *fleet.Batch) (IngestResult, error) {
	return IngestResult{}, errTODO
}

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
