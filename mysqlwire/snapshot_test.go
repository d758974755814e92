package mysqlwire_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
)

func withReadOnly() option {
	return func(_ *mysqlwire.Config, c *sqlite.Config) { c.ReadOnly = true }
}

func readV(t *testing.T, c *sql.Conn, id int) int {
	t.Helper()
	var v int
	// go-sql-driver prepares a query with arguments: COM_STMT_EXECUTE,
	// the path PHP's mysqli takes.
	if err := c.QueryRowContext(context.Background(), "SELECT v FROM kv WHERE id = ?", id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A session's consecutive reads share one read snapshot; a commit by
// another session must end it before the session's next statement.
func TestReadSnapshotSeesOtherSessionsCommits(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	ctx := context.Background()
	mustExec(t, db, "CREATE TABLE kv (id INTEGER PRIMARY KEY, v INTEGER)")
	mustExec(t, db, "INSERT INTO kv VALUES (1, 0)")
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	writer, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	for i := 1; i <= 5; i++ {
		if got := readV(t, reader, 1); got != i-1 {
			t.Fatalf("round %d: read %d, want %d", i, got, i-1)
		}
		if _, err := writer.ExecContext(ctx, "UPDATE kv SET v = ? WHERE id = 1", i); err != nil {
			t.Fatal(err)
		}
		if got := readV(t, reader, 1); got != i {
			t.Fatalf("round %d: after autocommit UPDATE read %d, want %d (stale snapshot)", i, got, i)
		}
	}
	// An open transaction's writes stay invisible until COMMIT, which is
	// seen at once.
	if _, err := writer.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.ExecContext(ctx, "UPDATE kv SET v = 100 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if got := readV(t, reader, 1); got != 5 {
		t.Fatalf("uncommitted write visible: read %d, want 5", got)
	}
	if _, err := writer.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if got := readV(t, reader, 1); got != 100 {
		t.Fatalf("after COMMIT read %d, want 100", got)
	}
	// The session's own write, then its own read.
	if _, err := reader.ExecContext(ctx, "UPDATE kv SET v = 7 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if got := readV(t, reader, 1); got != 7 {
		t.Fatalf("own write: read %d, want 7", got)
	}
}

// On a replica, pages applied from the primary are seen by a connected
// session's next statement.
func TestReadSnapshotSeesReplicaApply(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, withReadOnly())
	primary, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "primary.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	write := func(q string, args ...any) {
		t.Helper()
		w, err := primary.AcquireWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Release(ctx)
		if _, err := w.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	ship := func() {
		t.Helper()
		if _, _, _, err := primary.Checkpoint(ctx, "TRUNCATE"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(primary.Path())
		if err != nil {
			t.Fatal(err)
		}
		var pages []sqlite.Page
		for i := 0; i*sqlite.PageSize < len(data); i++ {
			pages = append(pages, sqlite.Page{No: uint32(i + 1), Data: data[i*sqlite.PageSize : (i+1)*sqlite.PageSize]})
		}
		if err := ts.db.ApplyPages(ctx, pages, uint32(len(pages))); err != nil {
			t.Fatal(err)
		}
	}
	write("CREATE TABLE kv (id INTEGER PRIMARY KEY, v INTEGER)")
	write("INSERT INTO kv VALUES (1, 0)")
	ship()
	db := ts.open(t, "")
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for i := 1; i <= 4; i++ {
		readV(t, reader, 1)
		if got := readV(t, reader, 1); got != i-1 {
			t.Fatalf("round %d: read %d, want %d", i, got, i-1)
		}
		write("UPDATE kv SET v = ? WHERE id = 1", i)
		ship()
		if got := readV(t, reader, 1); got != i {
			t.Fatalf("round %d: after apply read %d, want %d (stale snapshot)", i, got, i)
		}
	}
}

// Schema changes made past the MySQL front (Hrana, ephpm itself) reach the
// cached definitions, whether a connection stayed open or not.
func TestSchemaChangeOutsideMySQLSeen(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE sc (id INT PRIMARY KEY, a VARCHAR(10))")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The translator answers these from the catalog it caches.
	tables := func(c *sql.Conn) []string {
		t.Helper()
		rows, err := c.QueryContext(ctx, "SHOW TABLES")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return names
	}
	direct := func(q string) {
		t.Helper()
		w, err := ts.db.AcquireWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Release(ctx)
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if got := tables(conn); len(got) != 1 {
		t.Fatalf("tables %v", got)
	}
	direct("CREATE TABLE sc2 (x INTEGER)")
	if got := tables(conn); len(got) != 2 {
		t.Fatalf("open connection after CREATE TABLE outside MySQL: tables %v, want 2", got)
	}
	conn.Close()
	db.SetMaxIdleConns(0) // every statement on a new connection
	direct("CREATE TABLE sc3 (x INTEGER)")
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := tables(c2); len(got) != 3 {
		t.Fatalf("new connection after CREATE TABLE outside MySQL: tables %v, want 3", got)
	}
}

// BenchmarkShortSession is a PHP request's pattern: connect, prepare, one
// execute, disconnect, with no other connection open in between.
func BenchmarkShortSession(b *testing.B) {
	ts := startServer(b, withTranslator(nil))
	db := ts.open(b, "")
	mustExec(b, db, "CREATE TABLE bp (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, title VARCHAR(100), n INT)")
	for i := 1; i <= 100; i++ {
		mustExec(b, db, "INSERT INTO bp (id, title, n) VALUES (?, ?, ?)", i, "post", i)
	}
	db.SetMaxIdleConns(0)
	var title string
	var n int
	for i := 0; b.Loop(); i++ {
		if err := db.QueryRow("SELECT title, n FROM bp WHERE id = ?", i%100+1).Scan(&title, &n); err != nil {
			b.Fatal(err)
		}
	}
}
