package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
)

// Helpers of the statements that write many rows at once.

// execChunks executes the multi-row statement query(n) over args, cols
// arguments a row, as few times as the dialect's limit on arguments lets.
func (s *Store) execChunks(ctx context.Context, tx *sql.Tx, args []any, cols int, query func(rows int) string) error {
	for len(args) > 0 {
		n := chunkSize(len(args)/cols, cols)
		if _, err := tx.ExecContext(ctx, s.rebind(query(n)), args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}

// chunkSize is how many of rows rows of cols columns one statement takes:
// at most 8,000 arguments (SQLite allows 32,766, PostgreSQL 65,535), and
// sizes from a few fixed ones so that statements repeat and their plans
// are cached.
func chunkSize(rows, cols int) int {
	for _, n := range []int{256, 64, 16, 4} {
		if rows >= n && n*cols <= 8000 {
			return n
		}
	}
	return 1
}

// values is "(?, ?), (?, ?)" for rows rows of cols columns.
func values(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// jsonText is v as JSON, or empty when v is empty.
func jsonText[T any](v T, empty string) string {
	data, err := json.Marshal(v)
	if err != nil || string(data) == "null" {
		return empty
	}
	return string(data)
}
