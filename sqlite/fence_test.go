package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

// acquireAsync starts an AcquireWriter and reports its outcome; the
// writer, if any, is released at once.
func acquireAsync(db *sqlite.DB) <-chan error {
	out := make(chan error, 1)
	go func() {
		w, err := db.AcquireWriter(context.Background())
		if err == nil {
			w.Release(context.Background())
		}
		out <- err
	}()
	return out
}

func TestFenceHoldsWritersUntilLifted(t *testing.T) {
	db := open(t, sqlite.Config{})
	db.SetFenced(true)
	got := acquireAsync(db)
	// The writer stays at the gate while internal writers pass it.
	if err := db.WithWriter(context.Background(), func() error { return nil }); err != nil {
		t.Fatalf("WithWriter while fenced: %v", err)
	}
	select {
	case err := <-got:
		t.Fatalf("AcquireWriter passed the fence: %v", err)
	default:
	}
	db.SetFenced(false)
	if err := <-got; err != nil {
		t.Fatalf("after the fence lifted: %v", err)
	}
}

func TestFenceThenDemotionFailsWaitersWithNotPrimary(t *testing.T) {
	db := open(t, sqlite.Config{})
	db.SetFenced(true)
	got := acquireAsync(db)
	testutil.RetryUntil(t, 5*time.Second, func() error {
		if db.FenceWaiters() != 1 {
			return errors.New("not at the fence yet")
		}
		return nil
	})
	db.SetReadOnly(true)
	if err := <-got; !errors.Is(err, ephpm.ErrNotPrimary) {
		t.Fatalf("waiting writer after demotion: %v, want ErrNotPrimary", err)
	}
}

// A writer already waiting for the lease when the fence comes must not
// write after it: it looks at the gate again once it has the lease.
func TestFenceCatchesWriterQueuedForTheLease(t *testing.T) {
	db := open(t, sqlite.Config{})
	ctx := context.Background()
	held, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := acquireAsync(db) // queues for the lease
	db.SetFenced(true)
	held.Release(ctx)
	// Whoever fenced takes the writer once: everything before is done.
	if err := db.WithWriter(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		t.Fatalf("queued writer passed the fence: %v", err)
	case <-time.After(50 * time.Millisecond): // not a pass condition: only gives it a chance to slip through
	}
	db.SetFenced(false)
	testutil.RetryUntil(t, 5*time.Second, func() error {
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("after the fence lifted: %v", err)
			}
			return nil
		default:
			return errors.New("still waiting")
		}
	})
}

func TestFenceWaitIsBoundedByLockTimeout(t *testing.T) {
	db := open(t, sqlite.Config{LockTimeout: 100 * time.Millisecond})
	db.SetFenced(true)
	if err := <-acquireAsync(db); !errors.Is(err, sqlite.ErrLockTimeout) {
		t.Fatalf("fenced writer: %v, want ErrLockTimeout", err)
	}
}

func TestOnCommitRemove(t *testing.T) {
	db := open(t, sqlite.Config{})
	n := 0
	remove := db.OnCommit(func(context.Context, *sqlite.DB) error { n++; return nil })
	exec(t, db, "CREATE TABLE t (a INTEGER)")
	if err := db.WithWriter(context.Background(), func() error { remove(); return nil }); err != nil {
		t.Fatal(err)
	}
	exec(t, db, "INSERT INTO t VALUES (1)")
	if n != 1 {
		t.Fatalf("hook ran %d times, want 1 (before its removal)", n)
	}
}
