package libsql_test

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/libsql"
	_ "github.com/tursodatabase/libsql-client-go/libsql"
)

// TestLibsqlClientGo drives the Hrana endpoint with libsql-client-go
// through database/sql.
func TestLibsqlClientGo(t *testing.T) {
	sdb := openDB(t)
	ts := serve(t, sdb, nil, libsql.Config{})
	ctx := context.Background()

	db, err := sql.Open("libsql", ts.url+"?authToken="+testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, n INTEGER, f REAL, b BLOB)"); err != nil {
		t.Fatal(err)
	}
	res, err := db.ExecContext(ctx, "INSERT INTO t (v, n, f, b) VALUES (?, ?, ?, ?)", "x", int64(1)<<60, 2.5, []byte{0, 1, 0xfe})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != 1 {
		t.Errorf("LastInsertId = %d, want 1", id)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("RowsAffected = %d, want 1", n)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t (v) VALUES (?)", "x"); err == nil || !strings.Contains(err.Error(), "UNIQUE constraint failed: t.v") {
		t.Errorf("duplicate insert error = %v, want the UNIQUE constraint", err)
	}
	var (
		v  string
		n  int64
		f  float64
		b  []byte
		nl sql.NullString
	)
	if err := db.QueryRowContext(ctx, "SELECT v, n, f, b, NULL FROM t WHERE id = 1").Scan(&v, &n, &f, &b, &nl); err != nil {
		t.Fatal(err)
	}
	if v != "x" || n != 1<<60 || f != 2.5 || !bytes.Equal(b, []byte{0, 1, 0xfe}) || nl.Valid {
		t.Errorf("round trip = %q %d %v %v %v", v, n, f, b, nl)
	}

	// A transaction spans requests (batons); rollback undoes it.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t (v) VALUES ('tx')"); err != nil {
		t.Fatal(err)
	}
	var c int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE v = 'tx'").Scan(&c); err != nil || c != 1 {
		t.Fatalf("inside the transaction: count %d, %v", c, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE v = 'tx'").Scan(&c); err != nil || c != 0 {
		t.Fatalf("after rollback: count %d, %v", c, err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t (v) VALUES ('tx2')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := sdb.Reader().QueryRowContext(ctx, "SELECT count(*) FROM t WHERE v = 'tx2'").Scan(&c); err != nil || c != 1 {
		t.Fatalf("committed row in the site database: count %d, %v", c, err)
	}

	// A bad token is refused.
	bad, err := sql.Open("libsql", ts.url+"?authToken=nope")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.ExecContext(ctx, "SELECT 1"); err == nil {
		t.Error("bad token: no error")
	}
	db.Close()
	ts.checkReleased(t)
}
