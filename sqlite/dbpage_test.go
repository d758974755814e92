package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/ephpm/ephpm/sqlite"
)

// A page snapshot shows the database as of its start, WAL included,
// whatever commits after.
func TestPageSnapshotIsConsistent(t *testing.T) {
	ctx := context.Background()
	db := open(t, sqlite.Config{})
	exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	for i := range 200 {
		exec(t, db, "INSERT INTO t (b) VALUES (?)", fmt.Sprintf("row %d %0200d", i, i))
	}
	want, size := pagesOf(t, db) // checkpointed: the file is the state
	exec(t, db, "INSERT INTO t (b) VALUES ('in the WAL')")
	snap, err := sqlite.OpenPageSnapshot(ctx, db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	// Commits after the snapshot began are not seen.
	for range 50 {
		exec(t, db, "INSERT INTO t (b) VALUES (?)", fmt.Sprintf("%0500d", 7))
	}
	n := uint32(0)
	changed := 0
	err = snap.Each(ctx, func(no uint32, data []byte) error {
		n++
		if no != n {
			return fmt.Errorf("page %d after %d", no, n-1)
		}
		if int(no) <= len(want) && !bytes.Equal(sqlite.NormalizePage1(no, data), sqlite.NormalizePage1(no, want[no-1].Data)) {
			changed++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != snap.Pages() || n < size {
		t.Fatalf("%d pages read, snapshot says %d, file had %d", n, snap.Pages(), size)
	}
	// The one insert in the WAL changed a page or two, not the 50 after.
	if changed == 0 || changed > 3 {
		t.Fatalf("%d pages differ from the checkpointed file", changed)
	}
	p, err := snap.Page(ctx, 1)
	if err != nil || len(p) != sqlite.PageSize {
		t.Fatalf("page 1: %d bytes, %v", len(p), err)
	}
}
