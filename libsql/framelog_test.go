package libsql_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/libsql"
)

// framelogLog adapts *framelog.Log (whose Snapshot returns its concrete
// type) to libsql.Log.
type framelogLog struct {
	*framelog.Log
	snapshots *atomic.Int32
}

func (l framelogLog) Snapshot(ctx context.Context) (libsql.Snapshot, error) {
	l.snapshots.Add(1)
	s, err := l.Log.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TestEmbeddedReplicaFramelog serves the real frame log (captured from
// SQLite's WAL on every commit, compacted) to the npm libsql embedded
// replica: it follows ordinary commits, bootstraps from the snapshot after
// compaction, and sees its own delegated write at once (read-your-writes).
func TestEmbeddedReplicaFramelog(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, db, "INSERT INTO t (v) VALUES ('r0')")
	fl, err := framelog.Open(context.Background(), db, framelog.Options{CompactFrames: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	var snaps atomic.Int32
	ts := serve(t, db, framelogLog{fl, &snaps}, libsql.Config{})
	local := filepath.Join(t.TempDir(), "replica.db")

	want := []string{"r0"}
	wantRows(t, "first sync", replica(t, ts.url, testToken, local, "sync"), want...)

	mustExec(t, db, "INSERT INTO t (v) VALUES ('r1')")
	want = append(want, "r1")
	wantRows(t, "incremental sync", replica(t, ts.url, testToken, local, "sync"), want...)

	// Enough commits to compact the log past the replica's position.
	start := fl.Start()
	for i := 2; i < 40; i++ {
		v := fmt.Sprintf("r%d", i)
		mustExec(t, db, "INSERT INTO t (v) VALUES (?)", v)
		want = append(want, v)
	}
	if fl.Start() == start {
		t.Fatalf("the log was not compacted (start %d)", start)
	}
	out := replica(t, ts.url, testToken, local, "sync")
	wantRows(t, "sync from the snapshot", out, want...)
	if snaps.Load() != 1 {
		t.Errorf("snapshots served = %d, want 1", snaps.Load())
	}
	if got, next := uint64(*out.Sync.FrameNo), fl.Next(); got != next-1 {
		t.Errorf("frame_no = %d, want %d", got, next-1)
	}

	out = replica(t, ts.url, testToken, local, "write", "delegated")
	want = append(want, "delegated")
	wantRows(t, "delegated write, then read-your-writes sync", out, want...)
	ts.checkReleased(t)
}
