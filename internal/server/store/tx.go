package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// txAttempts is how many times inTx runs a transaction that PostgreSQL
// aborted as a deadlock victim or serialization failure.
const txAttempts = 5

// inTx runs f in a transaction, committed when f returns nil. A
// transaction that PostgreSQL chose as a deadlock's victim is run again
// (f must start from scratch each time). A database that does not answer
// is ErrUnavailable.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, f)
		if err == nil || attempt == txAttempts || !retryable(err) || ctx.Err() != nil {
			return s.wrapUnavailable(err)
		}
	}
}

func (s *Store) tryTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	if !s.postgres {
		// SQLite has one writer at a time: the others wait here, in
		// turn, rather than in its busy handler, which sleeps up to 100
		// ms between tries (the p99 latency of BenchmarkIngest's steady
		// fleet was 565 ms that way, 87 ms this way).
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// retryable reports whether err aborted a transaction that can run again
// as it is: a deadlock (40P01) or a serialization failure (40001).
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// wrapUnavailable marks err as ErrUnavailable when the database is not
// there.
func (s *Store) wrapUnavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}
