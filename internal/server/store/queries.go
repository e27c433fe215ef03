package store

import "context"

// ConfigAgents lists every agent's applied version and error.
func (s *Store) ConfigAgents(ctx context.Context) ([]ConfigAgent, error) { return nil, errTODO }

// Agents lists the agents, most recently seen first.
func (s *Store) Agents(ctx context.Context) ([]Agent, error) { return nil, errTODO }

// Findings lists findings, reached first, then most recently seen.
func (s *Store) Findings(ctx context.Context, f Filter) ([]Finding, error) { return nil, errTODO }

// Finding returns one finding.
func (s *Store) Finding(ctx context.Context, id int64) (*Finding, error) { return nil, errTODO }

// Overview summarizes the fleet.
func (s *Store) Overview(ctx context.Context, f Filter) (*Overview, error) { return nil, errTODO }

// Vuln returns one OSV entry's findings across the fleet.
func (s *Store) Vuln(ctx context.Context, osv string, f Filter) (*Vuln, error) { return nil, errTODO }

// Services lists the services.
func (s *Store) Services(ctx context.Context, f Filter) ([]ServiceSummary, error) {
	return nil, errTODO
}

// Service returns one service.
func (s *Store) Service(ctx context.Context, name string, f Filter) (*Service, error) {
	return nil, errTODO
}
