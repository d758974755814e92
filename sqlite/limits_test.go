package sqlite_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/sqlite"
)

// endless counts forever; endlessRows yields its first row at once and
// then steps forever looking for a second.
const (
	endless     = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
	endlessRows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c WHERE x = 1 OR x < 0"
)

func readAll(ctx context.Context, rs *sqlite.ReadSession, q string) ([]driver.Value, error) {
	rows, err := rs.Query(ctx, q, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.Value
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, dest[0])
	}
}

func isInterrupt(err error) bool { return sqlite.ErrorCode(err)&0xff == sqlite.CodeInterrupt }

// A Watch's time limit interrupts a read on the session's fast path, in
// its first step and in later ones, and the session reads on afterwards.
func TestWatchTimeoutReadSession(t *testing.T) {
	db := open(t, sqlite.Config{})
	rs := db.NewReadSession()
	defer rs.Close()
	w := &sqlite.Watch{Timeout: 200 * time.Millisecond}
	ctx := sqlite.WithWatch(context.Background(), w)
	for _, q := range []string{endless, endlessRows} {
		w.Begin()
		start := time.Now()
		_, err := readAll(ctx, rs, q)
		if !errors.Is(err, sqlite.ErrStatementTimeout) || !isInterrupt(err) {
			t.Fatalf("%s: %v, want ErrStatementTimeout (SQLITE_INTERRUPT)", q, err)
		}
		if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
			t.Errorf("%s: interrupted after %v, want ~200ms", q, el)
		}
		w.Begin()
		if got, err := readAll(ctx, rs, "SELECT 7"); err != nil || len(got) != 1 || got[0] != int64(7) {
			t.Fatalf("after the timeout: %v %v", got, err)
		}
	}
	// The limit is per statement: many short ones add up to more.
	start := time.Now()
	for time.Since(start) < 400*time.Millisecond {
		w.Begin()
		if _, err := readAll(ctx, rs, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 2000) SELECT count(*) FROM c"); err != nil {
			t.Fatalf("short statements: %v", err)
		}
	}
}

// Every path bounds a statement by its context: the reader pool through
// database/sql, a cancelled context, a deadline.
func TestContextInterruptsReaderPool(t *testing.T) {
	db := open(t, sqlite.Config{})
	w := &sqlite.Watch{Timeout: 200 * time.Millisecond}
	var n int64
	err := db.Reader().QueryRowContext(sqlite.WithWatch(context.Background(), w), endless).Scan(&n)
	if !errors.Is(err, sqlite.ErrStatementTimeout) {
		t.Errorf("watched pool read: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	rows, err := db.Reader().QueryContext(ctx, endlessRows)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pool read, later step: %v", err)
	}
	rows.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer dcancel()
	if err := db.Reader().QueryRowContext(dctx, endless).Scan(&n); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("pool read past its deadline: %v", err)
	}
	if err := db.Reader().QueryRowContext(context.Background(), "SELECT 5").Scan(&n); err != nil || n != 5 {
		t.Errorf("pool after interrupts: %d %v", n, err)
	}
}

// Gone is polled during a long statement only, and interrupts it.
func TestWatchGone(t *testing.T) {
	db := open(t, sqlite.Config{})
	rs := db.NewReadSession()
	defer rs.Close()
	var polls atomic.Int64
	var gone atomic.Bool
	w := &sqlite.Watch{Gone: func() bool { polls.Add(1); return gone.Load() }}
	ctx := sqlite.WithWatch(context.Background(), w)
	for range 100 {
		w.Begin()
		if _, err := readAll(ctx, rs, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := polls.Load(); n != 0 {
		t.Errorf("short statements polled the client %d times", n)
	}
	time.AfterFunc(300*time.Millisecond, func() { gone.Store(true) })
	w.Begin()
	start := time.Now()
	_, err := readAll(ctx, rs, endless)
	if !errors.Is(err, sqlite.ErrClientGone) {
		t.Fatalf("client gone: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("interrupted %v after start, client left after 300ms", el)
	}
	if n := polls.Load(); n < 2 || n > 1000 {
		t.Errorf("polled %d times in ~300ms", n)
	}
}

// A write interrupted inside a transaction: SQLite rolls the transaction
// back, the Writer says so, and the writer serves the next client.
func TestWatchTimeoutWriterInTx(t *testing.T) {
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t (x INTEGER)")
	exec(t, db, "INSERT INTO t VALUES (1)")
	ctx := context.Background()
	w := &sqlite.Watch{Timeout: 200 * time.Millisecond}
	wctx := sqlite.WithWatch(ctx, w)

	wr, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.Begin(wctx); err != nil {
		t.Fatal(err)
	}
	w.Begin()
	if _, err := wr.ExecContext(wctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	w.Begin()
	_, err = wr.ExecContext(wctx, "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c")
	if !errors.Is(err, sqlite.ErrStatementTimeout) {
		t.Fatalf("endless insert: %v", err)
	}
	if wr.InTx() {
		t.Error("InTx after SQLite rolled the transaction back")
	}
	wr.Release(ctx)

	// Autocommit: the endless write is rolled back on its own.
	wr, err = db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Begin()
	if _, err := wr.ExecContext(wctx, "UPDATE t SET x = x + 1 WHERE x IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c)"); !errors.Is(err, sqlite.ErrStatementTimeout) {
		t.Fatalf("endless update: %v", err)
	}
	w.Begin()
	if _, err := wr.ExecContext(wctx, "INSERT INTO t VALUES (3)"); err != nil {
		t.Fatalf("writer after the timeout: %v", err)
	}
	wr.Release(ctx)
	var got string
	if err := db.Reader().QueryRowContext(ctx, "SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)").Scan(&got); err != nil || got != "1,3" {
		t.Errorf("rows = %q (%v), want 1,3: the interrupted transaction's insert is rolled back", got, err)
	}
}

// Closing the database interrupts the clients' statements running on it.
func TestCloseInterruptsWatched(t *testing.T) {
	db := open(t, sqlite.Config{})
	rs := db.NewReadSession()
	w := &sqlite.Watch{}
	ctx := sqlite.WithWatch(context.Background(), w)
	errc := make(chan error, 1)
	go func() {
		_, err := readAll(ctx, rs, endless)
		rs.Close()
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-errc:
		if !errors.Is(err, sqlite.ErrClosed) {
			t.Errorf("statement on a closing database: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt the running statement")
	}
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close took %v", el)
	}
}

// SQLITE_LIMIT_LENGTH: no value or row longer than MaxLength is built.
func TestMaxLength(t *testing.T) {
	const limit = 1 << 20
	db := open(t, sqlite.Config{MaxLength: limit})
	rs := db.NewReadSession()
	defer rs.Close()
	ctx := context.Background()
	for _, q := range []string{
		fmt.Sprintf("SELECT length(randomblob(%d))", limit+1),
		fmt.Sprintf("SELECT length(printf('%%.*c', %d, 'x'))", limit+1),
		fmt.Sprintf("SELECT length(replace(printf('%%.*c', %d, 'x'), 'x', 'yy'))", limit/2+1),
		fmt.Sprintf("SELECT length(printf('%%.*c', %d, 'x') || printf('%%.*c', %d, 'x'))", limit/2+1, limit/2+1),
	} {
		if _, err := readAll(ctx, rs, q); sqlite.ErrorCode(err)&0xff != sqlite.CodeTooBig {
			t.Errorf("%s: %v, want SQLITE_TOOBIG", q, err)
		}
	}
	got, err := readAll(ctx, rs, fmt.Sprintf("SELECT length(randomblob(%d))", limit))
	if err != nil || len(got) != 1 || got[0] != int64(limit) {
		t.Errorf("a value of exactly MaxLength: %v %v", got, err)
	}
	exec(t, db, "CREATE TABLE b (v BLOB)")
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release(ctx)
	if _, err := w.ExecContext(ctx, "INSERT INTO b VALUES (?)", make([]byte, limit+1)); sqlite.ErrorCode(err)&0xff != sqlite.CodeTooBig {
		t.Errorf("storing a blob over MaxLength: %v", err)
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO b VALUES (?)", strings.Repeat("x", limit/2)); err != nil {
		t.Errorf("storing a value under MaxLength: %v", err)
	}
	if _, err := sqlite.Open(ctx, sqlite.Config{Path: t.TempDir() + "/x.db", MaxLength: 2_000_000_000}); err == nil {
		t.Error("Open accepted a MaxLength above SQLite's")
	}
}

// Temporary b-trees spill to a file (temp_store FILE): a recursive UNION,
// which keeps every row it made, does not grow SQLite's heap.
func TestTempStoreBounded(t *testing.T) {
	db := open(t, sqlite.Config{})
	rs := db.NewReadSession()
	defer rs.Close()
	w := &sqlite.Watch{Timeout: time.Second}
	before, _ := sqlite.HeapUsed()
	w.Begin()
	_, err := readAll(sqlite.WithWatch(context.Background(), w), rs,
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION SELECT x+1 FROM c) SELECT count(*) FROM c")
	if !errors.Is(err, sqlite.ErrStatementTimeout) {
		t.Fatalf("recursive union: %v", err)
	}
	_, high := sqlite.HeapUsed()
	// The page cache (2 MB) fills; with temp_store MEMORY the heap grew
	// by 14 MB here, and on without end.
	if grew := high - before; grew > 8<<20 {
		t.Errorf("SQLite's heap grew by %d KB during a 1 s recursive UNION", grew>>10)
	}
}

// The heap limit fails a statement that needs more with SQLITE_NOMEM,
// and the connection works afterwards.
func TestHeapLimit(t *testing.T) {
	db := open(t, sqlite.Config{MaxLength: 64 << 20})
	rs := db.NewReadSession()
	defer rs.Close()
	ctx := context.Background()
	if _, err := readAll(ctx, rs, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	now, _ := sqlite.HeapUsed()
	if err := sqlite.SetHeapLimit(now + 8<<20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlite.SetHeapLimit(sqlite.DefaultHeapLimit) })
	_, err := readAll(ctx, rs, "SELECT length(randomblob(32000000))")
	if sqlite.ErrorCode(err)&0xff != sqlite.CodeNoMem {
		t.Errorf("a 32 MB blob under an 8 MB heap limit: %v, want SQLITE_NOMEM", err)
	}
	sqlite.SetHeapLimit(sqlite.DefaultHeapLimit)
	if got, err := readAll(ctx, rs, "SELECT length(randomblob(32000000))"); err != nil || got[0] != int64(32000000) {
		t.Errorf("after the limit is raised: %v %v", got, err)
	}
}
