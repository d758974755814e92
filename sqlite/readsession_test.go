package sqlite_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/sqlite"
)

// readOne runs q on rs and returns the first column of its first row.
func readOne(t testing.TB, rs *sqlite.ReadSession, q string, args ...driver.Value) driver.Value {
	t.Helper()
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := rs.Query(context.Background(), q, nv)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		t.Fatalf("%s: next: %v", q, err)
	}
	return dest[0]
}

func TestReadSessionSeesOtherSessionsCommits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, db *sqlite.DB, v int64)
	}{
		{"autocommit", func(t *testing.T, db *sqlite.DB, v int64) {
			exec(t, db, "UPDATE t SET v = ?", v)
		}},
		{"transaction", func(t *testing.T, db *sqlite.DB, v int64) {
			ctx := context.Background()
			w, err := db.AcquireWriter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Release(ctx)
			if err := w.Begin(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := w.ExecContext(ctx, "UPDATE t SET v = ?", v); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, sqlite.Config{})
			exec(t, db, "CREATE TABLE t (v INTEGER)")
			exec(t, db, "INSERT INTO t VALUES (0)")
			rs := db.NewReadSession()
			defer rs.Close()
			other := db.NewReadSession() // a second pinned session
			defer other.Close()
			for i := int64(1); i <= 5; i++ {
				// Two reads in a row share the kept snapshot; the write
				// in between must end it before the next read.
				if got := readOne(t, rs, "SELECT v FROM t"); got != i-1 {
					t.Fatalf("round %d: read %v, want %d", i, got, i-1)
				}
				if got := readOne(t, other, "SELECT v FROM t"); got != i-1 {
					t.Fatalf("round %d: other read %v, want %d", i, got, i-1)
				}
				tc.write(t, db, i)
				if got := readOne(t, rs, "SELECT v FROM t"); got != i {
					t.Fatalf("round %d: after commit read %v, want %d (stale snapshot)", i, got, i)
				}
			}
		})
	}
}

func TestReadSessionSeesSchemaChange(t *testing.T) {
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	exec(t, db, "INSERT INTO t VALUES (1)")
	rs := db.NewReadSession()
	defer rs.Close()
	readOne(t, rs, "SELECT * FROM t")
	exec(t, db, "ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'")
	rows, err := rs.Query(context.Background(), "SELECT * FROM t", nil)
	if err != nil {
		t.Fatal(err)
	}
	cols := rows.Columns()
	rows.Close()
	if len(cols) != 2 {
		t.Fatalf("columns after ALTER: %v", cols)
	}
}

// A kept read snapshot must not make a checkpoint wait (the writer ends
// idle snapshots when it takes the lease).
func TestReadSessionDoesNotHoldUpCheckpoint(t *testing.T) {
	db := open(t, sqlite.Config{BusyTimeout: 3 * time.Second, CheckpointPages: -1})
	exec(t, db, "CREATE TABLE t (v INTEGER)")
	exec(t, db, "INSERT INTO t VALUES (1)")
	rs := db.NewReadSession()
	defer rs.Close()
	readOne(t, rs, "SELECT v FROM t")
	exec(t, db, "INSERT INTO t VALUES (2)")
	start := time.Now()
	busy, _, _, err := db.Checkpoint(context.Background(), "TRUNCATE")
	if err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("checkpoint took %v: it waited for the kept read snapshot", d)
	}
	if got := readOne(t, rs, "SELECT count(*) FROM t"); got != int64(2) {
		t.Errorf("after checkpoint: %v rows, want 2", got)
	}
}

// More sessions than readers: the extra ones read through the pool, and
// none waits for another session to end.
func TestReadSessionsBeyondReaders(t *testing.T) {
	db := open(t, sqlite.Config{Readers: 2})
	exec(t, db, "CREATE TABLE t (v INTEGER)")
	exec(t, db, "INSERT INTO t VALUES (7)")
	var sessions []*sqlite.ReadSession
	for i := 0; i < 6; i++ {
		rs := db.NewReadSession()
		defer rs.Close()
		sessions = append(sessions, rs)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; round < 3; round++ {
			for _, rs := range sessions {
				if got := readOne(t, rs, "SELECT v FROM t"); got != int64(7) {
					t.Errorf("read %v", got)
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reads blocked with more sessions than readers")
	}
}

func TestReadSessionRowsMustBeClosed(t *testing.T) {
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t (v INTEGER)")
	rs := db.NewReadSession()
	defer rs.Close()
	rows, err := rs.Query(context.Background(), "SELECT v FROM t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Query(context.Background(), "SELECT v FROM t", nil); err == nil {
		t.Error("second Query with rows open succeeded")
	}
	if err := rows.Next(make([]driver.Value, 1)); err != io.EOF {
		t.Errorf("empty table: %v, want EOF", err)
	}
	rows.Close()
	rows.Close()
	rs.Close()
	if _, err := rs.Query(context.Background(), "SELECT 1", nil); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestReadSessionIsReadOnly(t *testing.T) {
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t (v INTEGER)")
	rs := db.NewReadSession()
	defer rs.Close()
	rows, err := rs.Query(context.Background(), "INSERT INTO t VALUES (1) RETURNING v", nil)
	if err == nil {
		err = rows.Next(make([]driver.Value, 1))
		rows.Close()
	}
	if err == nil {
		t.Fatal("a write through a ReadSession succeeded")
	}
	if _, err := rs.Query(context.Background(), "ATTACH 'x.db' AS x", nil); err == nil {
		t.Error("ATTACH through a ReadSession succeeded")
	}
}

// Concurrent readers and a writer: every read sees a value at least as new
// as the last commit that finished before it began.
func TestReadSessionNeverStale(t *testing.T) {
	db := open(t, sqlite.Config{Readers: 2})
	exec(t, db, "CREATE TABLE t (v INTEGER)")
	exec(t, db, "INSERT INTO t VALUES (0)")
	var mu sync.Mutex
	committed := int64(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := db.NewReadSession()
			defer rs.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				floor := committed
				mu.Unlock()
				got := readOne(t, rs, "SELECT v FROM t").(int64)
				if got < floor {
					t.Errorf("read %d after %d committed", got, floor)
					return
				}
			}
		}()
	}
	for i := int64(1); i <= 200; i++ {
		exec(t, db, "UPDATE t SET v = ?", i)
		mu.Lock()
		committed = i
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
}

func BenchmarkReadSession(b *testing.B) {
	db := benchPosts(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name     string
		snapshot bool
	}{{"kept-snapshot", true}, {"per-statement", false}} {
		b.Run(bc.name, func(b *testing.B) {
			if !bc.snapshot {
				// While the writer lease is out no snapshot is kept.
				w, err := db.AcquireWriter(ctx)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Release(ctx)
			}
			rs := db.NewReadSession()
			defer rs.Close()
			dest := make([]driver.Value, 2)
			args := make([]driver.NamedValue, 1)
			for i := 0; b.Loop(); i++ {
				args[0] = driver.NamedValue{Ordinal: 1, Value: int64(i%1000 + 1)}
				rows, err := rs.Query(ctx, "SELECT title, n FROM p WHERE id = ?", args)
				if err != nil {
					b.Fatal(err)
				}
				if err := rows.Next(dest); err != nil {
					b.Fatal(err)
				}
				rows.Close()
			}
		})
	}
}

// A replica's ApplyPages is seen by a session's next read, also by a
// session that kept a read snapshot from before, and the apply does not
// wait for that snapshot.
func TestReadSessionSeesApplyPages(t *testing.T) {
	ctx := context.Background()
	primary := open(t, sqlite.Config{})
	replica := open(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "replica.db"), ReadOnly: true, BusyTimeout: 3 * time.Second, CheckpointPages: 1})
	exec(t, primary, "CREATE TABLE t (v INTEGER)")
	exec(t, primary, "INSERT INTO t VALUES (1)")
	pages, size := pagesOf(t, primary)
	if err := replica.ApplyPages(ctx, pages, size); err != nil {
		t.Fatal(err)
	}
	rs := replica.NewReadSession()
	defer rs.Close()
	for want := int64(1); want <= 4; want++ {
		if got := readOne(t, rs, "SELECT max(v) FROM t"); got != want {
			t.Fatalf("read %v, want %d", got, want)
		}
		readOne(t, rs, "SELECT count(*) FROM t") // the snapshot is kept here
		gen := replica.Generation()
		exec(t, primary, "INSERT INTO t VALUES (?)", want+1)
		pages, size := pagesOf(t, primary)
		start := time.Now()
		if err := replica.ApplyPages(ctx, pages, size); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("ApplyPages took %v: it waited for the kept snapshot", d)
		}
		if replica.Generation() == gen {
			t.Errorf("Generation unchanged by ApplyPages")
		}
	}
}
