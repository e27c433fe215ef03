package store

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync"
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

// TestOpenRace opens one new database from several stores at once (as
// servers starting together): each migration runs once, and every Open
// succeeds.
func TestOpenRace(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			dsn := d.dsn(t)
			const n = 4
			stores := make([]*Store, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn, Options{}) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Open %d: %v", i, err)
					continue
				}
				defer stores[i].Close()
			}
			if t.Failed() {
				return
			}
			names, _ := fs.Glob(migrations, "migrations/*.sql")
			if got := count(t, stores[0], "schema_migrations"); got != len(names) {
				t.Errorf("schema_migrations has %d rows, want %d", got, len(names))
			}
		})
	}
}

func TestMigrationVersion(t *testing.T) {
	for name, want := range map[string]int{"migrations/0001_init.sql": 1, "migrations/0012_x.sql": 12, "migrations/x.sql": 0, "migrations/0000_x.sql": 0} {
		got, err := migrationVersion(name)
		if got != want || (err != nil) != (want == 0) {
			t.Errorf("migrationVersion(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
}
