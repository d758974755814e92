package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// pagesOf reads a checkpointed database file as page images.
func pagesOf(t *testing.T, db *sqlite.DB) ([]sqlite.Page, uint32) {
	t.Helper()
	if _, _, _, err := db.Checkpoint(context.Background(), "TRUNCATE"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	var pages []sqlite.Page
	for i := 0; i*sqlite.PageSize < len(data); i++ {
		pages = append(pages, sqlite.Page{No: uint32(i + 1), Data: data[i*sqlite.PageSize : (i+1)*sqlite.PageSize]})
	}
	return pages, uint32(len(pages))
}

func TestApplyPagesMakesAnIdenticalReplica(t *testing.T) {
	ctx := context.Background()
	primary := open(t, sqlite.Config{})
	replica := open(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "replica.db"), ReadOnly: true})

	exec(t, primary, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	for i := range 500 {
		exec(t, primary, "INSERT INTO t (b) VALUES (?)", fmt.Sprintf("row %d %0100d", i, i))
	}
	pages, size := pagesOf(t, primary)
	if err := replica.ApplyPages(ctx, pages, size); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := replica.Reader().QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 500 {
		t.Fatalf("replica rows = %d, %v; want 500", n, err)
	}
	if replica.Applied() != 1 {
		t.Errorf("Applied = %d", replica.Applied())
	}

	// Shrink: the truncation row drops pages a smaller database lacks.
	primary = open(t, sqlite.Config{})
	exec(t, primary, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	for i := range 10 {
		exec(t, primary, "INSERT INTO t (b) VALUES (?)", fmt.Sprint(i))
	}
	pages, size = pagesOf(t, primary)
	if err := replica.ApplyPages(ctx, pages, size); err != nil {
		t.Fatal(err)
	}
	ph, pn, err := sqlite.Hash(ctx, primary.Path())
	if err != nil {
		t.Fatal(err)
	}
	rh, rn, err := sqlite.Hash(ctx, replica.Path())
	if err != nil {
		t.Fatal(err)
	}
	if ph != rh || pn != rn || pn != int(size) {
		t.Fatalf("primary %s (%d pages) != replica %s (%d pages), size %d", ph, pn, rh, rn, size)
	}
	if err := replica.Reader().QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 10 {
		t.Fatalf("replica rows after vacuum = %d, %v; want 10", n, err)
	}
	// Clients still cannot write the replica.
	if _, err := replica.AcquireWriter(ctx); err != ephpm.ErrNotPrimary {
		t.Fatalf("AcquireWriter on replica = %v", err)
	}
}

func TestApplyPagesRejectsBadPagesAtomically(t *testing.T) {
	ctx := context.Background()
	primary := open(t, sqlite.Config{})
	replica := open(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "replica.db"), ReadOnly: true})
	exec(t, primary, "CREATE TABLE t (a INTEGER PRIMARY KEY)")
	pages, size := pagesOf(t, primary)
	if err := replica.ApplyPages(ctx, pages, size); err != nil {
		t.Fatal(err)
	}
	before, _, _ := sqlite.Hash(ctx, replica.Path())
	bad := append([]sqlite.Page{}, pages...)
	bad = append(bad, sqlite.Page{No: size + 5, Data: make([]byte, 10)})
	if err := replica.ApplyPages(ctx, bad, size); err == nil {
		t.Fatal("short page accepted")
	}
	after, _, _ := sqlite.Hash(ctx, replica.Path())
	if before != after {
		t.Fatal("a failed apply changed the replica")
	}
}

func TestCommitHookErrorFailsTheStatementAndSkipsCheckpoint(t *testing.T) {
	ctx := context.Background()
	db := open(t, sqlite.Config{CheckpointPages: 1})
	fail := true
	db.OnCommit(func(context.Context, *sqlite.DB) error {
		if fail {
			return os.ErrPermission
		}
		return nil
	})
	db.SetCheckpointGuard(func(context.Context) error {
		if fail {
			return os.ErrPermission
		}
		return nil
	})
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.ExecContext(ctx, "CREATE TABLE t (a)")
	w.Release(ctx)
	if err == nil {
		t.Fatal("hook error not reported")
	}
	if fi, err := os.Stat(db.Path() + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("WAL was checkpointed away although the hook failed: %v", err)
	}
	if _, _, _, err := db.Checkpoint(ctx, "TRUNCATE"); err == nil {
		t.Fatal("checkpoint ran although the guard refused")
	}
	fail = false
	if _, _, _, err := db.Checkpoint(ctx, "TRUNCATE"); err != nil {
		t.Fatal(err)
	}
}
