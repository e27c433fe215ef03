package store

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
)

func TestOpenSQLiteMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reach.db")
	for range 2 { // the second open finds the schema in place
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		names, _ := fs.Glob(migrations, "migrations/*.sql")
		if n != len(names) || n < 2 {
			t.Errorf("schema_migrations has %d rows, want one per migration (%d)", n, len(names))
		}
		s.Close()
	}
}

func TestRebind(t *testing.T) {
	s := &Store{postgres: true}
	if got, want := s.rebind(`a = ? AND b = ?`), `a = $1 AND b = $2`; got != want {
		t.Errorf("rebind = %q, want %q", got, want)
	}
	if got := (&Store{}).rebind(`a = ?`); got != `a = ?` {
		t.Errorf("sqlite rebind = %q", got)
	}
	if got, want := redact("postgres://u:secret@h:5432/db"), "postgres://u:xxxxx@h:5432/db"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}
