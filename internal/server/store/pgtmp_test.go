package store

// Until testprog.Postgres lands on main: a fresh database on
// REACH_TEST_POSTGRES. (Removed at the rebase.)

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func init() {
	dialects = append(dialects, struct {
		name string
		dsn  func(t testing.TB) string
	}{"postgres", tmpPostgres})
}

func tmpPostgres(t testing.TB) string {
	admin := os.Getenv("REACH_TEST_POSTGRES")
	if admin == "" {
		t.Skip("REACH_TEST_POSTGRES unset")
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "reach_store_" + hex.EncodeToString(b)
	exec := func(q string) {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE DATABASE " + name)
	t.Cleanup(func() { exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String()
}
