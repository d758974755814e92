package sqlite_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/sqlite"
)

var errNoWrites = errors.New("no writes now")

func count(t *testing.T, db *sqlite.DB) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRowContext(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestCommitCheckRollsBackClientCommits(t *testing.T) {
	ctx := context.Background()
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t(x)")
	var refuse atomic.Bool
	db.SetCommitCheck(func() error {
		if refuse.Load() {
			return errNoWrites
		}
		return nil
	})
	exec(t, db, "INSERT INTO t VALUES (1)")

	// A transaction open across the change fails at COMMIT, whole.
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	if err := w.Commit(ctx); !errors.Is(err, errNoWrites) {
		t.Fatalf("Commit = %v, want the check's error", err)
	}
	if w.InTx() {
		t.Error("still in the transaction after a refused commit")
	}
	// Autocommit too, and through QueryContext (AfterStatement).
	if _, err := w.ExecContext(ctx, "INSERT INTO t VALUES (3)"); !errors.Is(err, errNoWrites) {
		t.Fatalf("autocommit Exec = %v, want the check's error", err)
	}
	rows, err := w.QueryContext(ctx, "INSERT INTO t VALUES (4) RETURNING x")
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
	}
	if err := w.AfterStatement(ctx); !errors.Is(err, errNoWrites) {
		t.Fatalf("AfterStatement = %v, want the check's error", err)
	}
	w.Release(ctx)
	if n := count(t, db); n != 1 {
		t.Fatalf("%d rows, want 1: a refused commit left rows", n)
	}
	// Internal writers are never checked.
	if err := db.WithWriter(ctx, func() error { return nil }); err != nil {
		t.Fatalf("WithWriter: %v", err)
	}
	if _, _, _, err := db.Checkpoint(ctx, "PASSIVE"); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	refuse.Store(false)
	exec(t, db, "INSERT INTO t VALUES (5)")
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestRefusedGateFailsAtOnceAndWakesWaiters(t *testing.T) {
	ctx := context.Background()
	db := open(t, sqlite.Config{LockTimeout: 5 * time.Second})
	db.SetFenced(true)
	got := acquireAsync(db)
	time.Sleep(20 * time.Millisecond)
	db.SetRefused(errNoWrites)
	if err := <-got; !errors.Is(err, errNoWrites) {
		t.Fatalf("waiter at the fence: %v, want the refusal", err)
	}
	db.SetFenced(false)
	start := time.Now()
	if _, err := db.AcquireWriter(ctx); !errors.Is(err, errNoWrites) {
		t.Fatalf("AcquireWriter = %v, want the refusal", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v: it must not wait", d)
	}
	if err := db.WithWriter(ctx, func() error { return nil }); err != nil {
		t.Fatalf("internal writer while refused: %v", err)
	}
	db.SetRefused(nil)
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatalf("after the refusal lifted: %v", err)
	}
	w.Release(ctx)
}
