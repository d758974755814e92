package mysqlwire_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
)

// A primary without its lease: a write fails at once with 1290 and the
// refusal's words, a transaction open across the lease's end fails at
// COMMIT and leaves nothing, and the session keeps reading.
func TestNoLeaseIs1290AndSessionReads(t *testing.T) {
	db, c := startForwardingServer(t, nil)
	c.SetMaxOpenConns(1) // one session throughout
	mustExec(t, c, "CREATE TABLE f (a INTEGER)")
	mustExec(t, c, "INSERT INTO f VALUES (1)")
	noLease := fmt.Errorf("site example.com: this node's primary lease lapsed (the cluster directory is unreachable); writes refused, reads still served: %w", ephpm.ErrNoLease)
	var lapsed atomic.Bool
	db.SetCommitCheck(func() error {
		if lapsed.Load() {
			return noLease
		}
		return nil
	})

	tx, err := c.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO f VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	lapsed.Store(true)
	err = tx.Commit()
	if me := mysqlErr(err); me == nil || me.Number != 1290 || !strings.Contains(me.Message, "primary lease lapsed") {
		t.Fatalf("COMMIT across the lease's end = %v, want 1290 naming the lease", err)
	}

	db.SetRefused(noLease)
	_, err = c.Exec("INSERT INTO f VALUES (3)")
	if me := mysqlErr(err); me == nil || me.Number != 1290 || !strings.Contains(me.Message, "site example.com: this node's primary lease lapsed") {
		t.Fatalf("write without the lease = %v, want 1290 naming the site", err)
	}
	var n int
	if err := c.QueryRow("SELECT count(*) FROM f").Scan(&n); err != nil || n != 1 {
		t.Fatalf("read after the refusals: %d rows, %v; want 1", n, err)
	}
	db.SetRefused(nil)
	lapsed.Store(false)
	mustExec(t, c, "INSERT INTO f VALUES (4)")
	if got := count(t, db); got != 2 {
		t.Fatalf("%d rows, want 2", got)
	}
	if errors.Is(noLease, ephpm.ErrNotPrimary) {
		t.Fatal("a lease refusal must not look like a demotion (it would be forwarded)")
	}
}

// A session's temporary tables are dropped when it ends even while the
// primary refuses writes: they live on the shared writer connection.
func TestTempTablesDroppedWithoutLease(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE tmp_ids (id INT)"); err != nil {
		t.Fatal(err)
	}
	noLease := fmt.Errorf("site example.com: no lease: %w", ephpm.ErrNoLease)
	ts.db.SetRefused(noLease)
	ts.db.SetCommitCheck(func() error { return noLease })
	conn.Close()
	db.Close()
	testutil.RetryUntil(t, 5*time.Second, func() error {
		w, err := ts.db.AcquireInternal(ctx)
		if err != nil {
			return err
		}
		defer w.Release(ctx)
		var left int
		if err := w.QueryRowContext(ctx, "SELECT count(*) FROM temp.sqlite_master WHERE name = 'tmp_ids'").Scan(&left); err != nil {
			return err
		}
		if left != 0 {
			return errors.New("temp table outlived its session")
		}
		return nil
	})
}
