package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

func open(t *testing.T, cfg sqlite.Config) *sqlite.DB {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "site.db")
	}
	db, err := sqlite.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sqlite.DB, q string, args ...any) {
	t.Helper()
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release(ctx)
	if _, err := w.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestOpenCreatesWALWithPageSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.db")
	db := open(t, sqlite.Config{Path: path})
	exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 100)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	if got := int(hdr[16])<<8 | int(hdr[17]); got != sqlite.PageSize {
		t.Errorf("page size = %d, want %d", got, sqlite.PageSize)
	}
	// File format bytes 18/19 are 2 in WAL mode.
	if hdr[18] != 2 || hdr[19] != 2 {
		t.Errorf("header read/write version = %d/%d, want 2/2 (WAL)", hdr[18], hdr[19])
	}
}

func TestAutocheckpointOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.db")
	db := open(t, sqlite.Config{Path: path, CheckpointPages: -1})
	exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)")
	// 1500 rows of ~4 KB: SQLite's default autocheckpoint (1000 pages) would
	// have reset the WAL long before it reached this size.
	for i := 0; i < 1500; i++ {
		exec(t, db, "INSERT INTO t (b) VALUES (randomblob(4000))")
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if pages := fi.Size() / sqlite.PageSize; pages < 2500 {
		t.Errorf("WAL has %d pages; autocheckpoint seems on", pages)
	}
}

func TestCheckpointAfterThreshold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.db")
	db := open(t, sqlite.Config{Path: path, CheckpointPages: 20})
	exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)")
	exec(t, db, "INSERT INTO t (b) SELECT randomblob(4000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50) SELECT x FROM c)")
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 {
		t.Errorf("WAL size after threshold commit = %d, want 0 (truncated)", fi.Size())
	}
	var n int
	if err := db.Reader().QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 50 {
		t.Errorf("count = %d, %v; want 50", n, err)
	}
}

func TestCommitHook(t *testing.T) {
	db := open(t, sqlite.Config{})
	var calls atomic.Int32
	db.OnCommit(func(ctx context.Context, d *sqlite.DB) error {
		if d != db {
			t.Error("hook got another DB")
		}
		calls.Add(1)
		return nil
	})
	ctx := context.Background()
	exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY)")
	exec(t, db, "INSERT INTO t VALUES (1)")
	if got := calls.Load(); got != 2 {
		t.Fatalf("after 2 autocommit statements: %d hook calls, want 2", got)
	}

	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 5; i++ {
		if _, err := w.ExecContext(ctx, "INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("inside a transaction: %d hook calls, want still 2", got)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("after commit: %d hook calls, want 3", got)
	}
	if err := w.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO t VALUES (10)"); err != nil {
		t.Fatal(err)
	}
	if err := w.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	w.Release(ctx)
	if got := calls.Load(); got != 3 {
		t.Errorf("after rollback: %d hook calls, want 3", got)
	}
}

func TestWriterSerialisedAndLockTimeout(t *testing.T) {
	db := open(t, sqlite.Config{LockTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = db.AcquireWriter(ctx)
	if !errors.Is(err, sqlite.ErrLockTimeout) {
		t.Fatalf("second AcquireWriter: %v, want ErrLockTimeout", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("gave up after %v, before the lock timeout", el)
	}

	got := make(chan error, 1)
	go func() {
		w2, err := db.AcquireWriter(ctx)
		if err == nil {
			w2.Release(ctx)
		}
		got <- err
	}()
	w.Release(ctx)
	if err := <-got; err != nil {
		t.Fatalf("waiting writer after release: %v", err)
	}
}

func TestReleaseRollsBackOpenTransaction(t *testing.T) {
	db := open(t, sqlite.Config{})
	ctx := context.Background()
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	w, _ := db.AcquireWriter(ctx)
	if err := w.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// Own uncommitted write visible on the writer, not to readers.
	var n int
	if err := w.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Errorf("writer sees %d rows (%v), want 1", n, err)
	}
	if err := db.Reader().QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Errorf("reader sees %d rows (%v), want 0", n, err)
	}
	w.Release(ctx)
	w2, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Release(ctx)
	if err := w2.Begin(ctx); err != nil {
		t.Fatalf("next writer cannot begin (transaction leaked?): %v", err)
	}
	if err := w2.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Errorf("after release: %d rows (%v), want 0", n, err)
	}
}

func TestAuthorizer(t *testing.T) {
	dir := t.TempDir()
	db := open(t, sqlite.Config{Path: filepath.Join(dir, "site.db")})
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	ctx := context.Background()
	tests := []struct {
		name  string
		query string
		ok    bool
	}{
		{"attach", fmt.Sprintf("ATTACH '%s' AS x", filepath.Join(dir, "other.db")), false},
		{"pragma set journal", "PRAGMA journal_mode=DELETE", false},
		{"pragma writable_schema", "PRAGMA writable_schema=1", false},
		{"load_extension", "SELECT load_extension('/tmp/x.so')", false},
		{"pragma table_info", "PRAGMA table_info(t)", true},
		{"pragma table_info function", "SELECT name FROM pragma_table_info('t')", true},
		{"plain select", "SELECT 1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{"reader", "writer"} {
				var err error
				if target == "reader" {
					var rows interface{ Close() error }
					rows, err = db.Reader().QueryContext(ctx, tc.query)
					if err == nil {
						rows.Close()
					}
				} else {
					w, werr := db.AcquireWriter(ctx)
					if werr != nil {
						t.Fatal(werr)
					}
					_, err = w.ExecContext(ctx, tc.query)
					w.Release(ctx)
				}
				if tc.ok && err != nil {
					t.Errorf("%s: %v, want allowed", target, err)
				}
				if !tc.ok && err == nil {
					t.Errorf("%s: allowed, want denied", target)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "other.db")); err == nil {
		t.Error("ATTACH created a file")
	}
}

func TestReaderIsReadOnly(t *testing.T) {
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	if _, err := db.Reader().Exec("INSERT INTO t VALUES (1)"); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("insert on reader: %v, want readonly error", err)
	}
}

func TestFunctionsRegistered(t *testing.T) {
	db := open(t, sqlite.Config{Functions: []sqlite.Function{{
		Name: "ephpm_test_double", NArgs: 1, Deterministic: true,
		Impl: func(args []driver.Value) (driver.Value, error) { return args[0].(int64) * 2, nil },
	}}})
	var n int64
	if err := db.Reader().QueryRow("SELECT ephpm_test_double(21)").Scan(&n); err != nil || n != 42 {
		t.Errorf("ephpm_test_double(21) = %d, %v; want 42", n, err)
	}
}

func TestOpenRejectsQueryInPath(t *testing.T) {
	_, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "a.db?_pragma=x")})
	if err == nil {
		t.Fatal("Open accepted a path with '?'")
	}
}

func TestCloseWhileWriterHeldTimesOut(t *testing.T) {
	db := open(t, sqlite.Config{LockTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = w
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung while a writer was held")
	}
	if _, err := db.AcquireWriter(ctx); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("AcquireWriter after Close: %v, want ErrClosed", err)
	}
}

// benchPosts opens a database with 1,000 rows in p(id, title, n) for the
// read benchmarks; it is closed when b ends.
func benchPosts(b *testing.B) *sqlite.DB {
	b.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "b.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Release(ctx)
	for _, q := range []string{"CREATE TABLE p (id INTEGER PRIMARY KEY, title TEXT, n INTEGER)",
		"INSERT INTO p WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) SELECT x, 'post ' || x, x * 2 FROM c"} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

func BenchmarkPointRead(b *testing.B) {
	db := benchPosts(b)
	ctx := context.Background()
	const q = "SELECT title, n FROM p WHERE id = ?"
	for _, bc := range []struct {
		name  string
		query func(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	}{
		{"cached", db.QueryContext},
		{"uncached", db.Reader().QueryContext},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var title string
			var n int
			for i := 0; b.Loop(); i++ {
				rows, err := bc.query(ctx, q, i%1000+1)
				if err != nil {
					b.Fatal(err)
				}
				if !rows.Next() {
					b.Fatal("no row")
				}
				rows.Scan(&title, &n)
				rows.Close()
			}
		})
	}
}

func TestQueryCacheSeesSchemaChanges(t *testing.T) {
	db := open(t, sqlite.Config{})
	ctx := context.Background()
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	exec(t, db, "INSERT INTO t VALUES (1)")
	cols := func() ([]string, error) {
		rows, err := db.QueryContext(ctx, "SELECT * FROM t")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return rows.Columns()
	}
	for i := 0; i < 3; i++ { // the second run caches the statement
		if c, err := cols(); err != nil || len(c) != 1 {
			t.Fatalf("run %d: %v, %v", i, c, err)
		}
	}
	exec(t, db, "ALTER TABLE t ADD COLUMN b TEXT")
	if c, err := cols(); err != nil || strings.Join(c, ",") != "a,b" {
		t.Errorf("after ALTER: columns %v, %v; want a,b", c, err)
	}
	exec(t, db, "DROP TABLE t")
	if _, err := cols(); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("after DROP: %v, want no such table", err)
	}
}

func TestReadOnlyRefusesWriters(t *testing.T) {
	db := open(t, sqlite.Config{ReadOnly: true})
	ctx := context.Background()
	if _, err := db.AcquireWriter(ctx); !errors.Is(err, ephpm.ErrNotPrimary) {
		t.Fatalf("AcquireWriter on a replica: %v, want ErrNotPrimary", err)
	}
	if _, _, _, err := db.Checkpoint(ctx, "PASSIVE"); err != nil {
		t.Errorf("checkpoint on a replica: %v", err)
	}
	db.SetReadOnly(false)
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	db.SetReadOnly(true)
	if _, err := db.AcquireWriter(ctx); !errors.Is(err, ephpm.ErrNotPrimary) {
		t.Errorf("after SetReadOnly(true): %v", err)
	}
}
