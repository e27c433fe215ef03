package testprog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgTimeout bounds each administrative step against a test PostgreSQL
// (connect, create, drop).
const pgTimeout = 30 * time.Second

// Postgres returns the DSN of a new, empty database, made for this test on
// the server that $REACH_TEST_POSTGRES names (a DSN for a role that may
// CREATE DATABASE; .ci/services sets it up) and dropped when the test ends,
// with any connection the test left open. It skips the test when the
// variable is unset, except under CI=true, where it fails it.
func Postgres(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("REACH_TEST_POSTGRES")
	if admin == "" {
		Skip(tb, "REACH_TEST_POSTGRES is unset: point it at a PostgreSQL server where the test may CREATE DATABASE (as root on Debian, `. .ci/services` installs and starts one and sets it)")
	}
	dsn, drop, err := NewPostgresDatabase(admin, tb.Name())
	if err != nil {
		tb.Fatalf("REACH_TEST_POSTGRES: %v", err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Error(err)
		}
	})
	return dsn
}

// NewPostgresDatabase makes a new, empty database, its name made from
// label, on the server that admin names (a DSN for a role that may CREATE
// DATABASE), and returns its DSN and a function that drops it with any
// connection left open. It is Postgres for a program that is not a test
// (bench/server).
func NewPostgresDatabase(admin, label string) (dsn string, drop func() error, err error) {
	name := dbName(label)
	dsn, err = withDatabase(admin, name)
	if err != nil {
		return "", nil, err
	}
	if err := pgExec(admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func() error {
		// WITH (FORCE) (PostgreSQL 13 and later) ends the connections
		// left open rather than failing on them. It cannot end an
		// autovacuum worker busy in the database, for a role that is no
		// superuser (SQLSTATE 42501, "must be a member of the role whose
		// process is being terminated"): try again until it is done.
		stmt := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
		err := pgExec(admin, stmt)
		for deadline := time.Now().Add(pgTimeout); isPgCode(err, "42501") && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			err = pgExec(admin, stmt)
		}
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return dsn, drop, nil
}

var notIdent = regexp.MustCompile(`[^a-z0-9]+`)

// dbName returns a database name unique to this call that says which test
// made it (PostgreSQL keeps 63 bytes of a name).
func dbName(test string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux.
	}
	s := strings.Trim(notIdent.ReplaceAllString(strings.ToLower(test), "_"), "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return "reach_" + s + "_" + hex.EncodeToString(b[:])
}

// withDatabase returns dsn (a URL or keyword/value DSN) with its database
// set to name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword/value form, the last of repeated keywords wins.
	return dsn + " dbname=" + name, nil
}

// pgExec runs one statement on dsn in a connection of its own.
func pgExec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// isPgCode reports whether err is a PostgreSQL error with this SQLSTATE.
func isPgCode(err error, code string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == code
}
