package testprog

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// roundTrip creates a table in dsn's database, stores rows and reads them
// back.
func roundTrip(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE finding (id int PRIMARY KEY, osv text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, osv := range []string{"GO-2021-0113", "GO-2022-0956"} {
		if _, err := conn.Exec(ctx, `INSERT INTO finding VALUES ($1, $2)`, i, osv); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	rows, err := conn.Query(ctx, `SELECT osv FROM finding ORDER BY id DESC`)
	if err != nil {
		t.Fatal(err)
	}
	got, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "GO-2022-0956 GO-2021-0113" {
		t.Fatalf("rows read back = %q, want the two stored, newest first", got)
	}
}

func TestPostgres(t *testing.T) {
	outer := t
	var name string
	t.Run("use", func(t *testing.T) {
		dsn := Postgres(t)
		conn := connect(t, dsn)
		if err := conn.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "reach_testpostgres_use_") {
			t.Errorf("database %q: want one named after the test", name)
		}
		roundTrip(t, conn)
		// A second database for the same test is another one, empty.
		other := connect(t, Postgres(t))
		var n int
		if err := other.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'finding'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("second database of the test has the first one's table")
		}
		// A connection left open past the test does not keep the database.
		leak, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		outer.Cleanup(func() { leak.Close(context.Background()) })
	})
	if name == "" || t.Failed() {
		return // skipped or failed before it had a database
	}
	conn := connect(t, os.Getenv("REACH_TEST_POSTGRES"))
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "postgres://u:p@127.0.0.1:5432/reach_x?sslmode=disable"},
		{"postgresql://u@h", "postgresql://u@h/reach_x"},
		{"host=127.0.0.1 dbname=postgres user=u", "host=127.0.0.1 dbname=postgres user=u dbname=reach_x"},
	} {
		got, err := withDatabase(tc.dsn, "reach_x")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
			continue
		}
		// pgx reads the same database name from it.
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "reach_x" {
			t.Errorf("pgx.ParseConfig(%q): database %v, %v; want reach_x", got, cfg, err)
		}
	}
	if _, err := withDatabase("postgres://h:notaport/x", "reach_x"); err == nil {
		t.Errorf("withDatabase accepted a URL with a bad port")
	}
}

func TestDBName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	long := strings.Repeat("TestVeryLong/Sub-Test ", 10)
	a, b := dbName(long), dbName(long)
	if a == b {
		t.Errorf("dbName twice = %q both times", a)
	}
	for _, n := range []string{a, dbName("TestX/üñí code#1"), dbName("")} {
		if len(n) > 63 || !valid.MatchString(n) {
			t.Errorf("dbName = %q: want at most 63 bytes of [a-z0-9_]", n)
		}
	}
}

func TestPostgresServer(t *testing.T) {
	srv := PostgresServer(t)
	u, err := url.Parse(srv.DSN())
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("DSN %q: want a URL on loopback (%v)", srv.DSN(), err)
	}
	roundTrip(t, connect(t, srv.DSN()))

	// A connection open across the stop is ended by it.
	open := connect(t, srv.DSN())
	srv.Stop()
	if err := open.Ping(context.Background()); err == nil {
		t.Errorf("a connection opened before Stop still works after it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, srv.DSN()); err == nil {
		conn.Close(ctx)
		t.Fatalf("connect after Stop succeeded")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect after Stop hung instead of being refused: %v", err)
	}

	srv.Start()
	conn := connect(t, srv.DSN())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM finding`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("after a restart the table has %d rows, want the 2 stored before", n)
	}
	if os.Geteuid() == 0 {
		// As root, the server runs as the user postgres.
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("\nUid:\t%d\t", srv.cred.uid)
		if srv.cred.uid == 0 || !strings.Contains(string(status), want) {
			t.Errorf("postgres runs as\n%s\nwant uid %d", status, srv.cred.uid)
		}
	}
}
