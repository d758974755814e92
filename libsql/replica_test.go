package libsql_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/sqlite"
)

type replicaOut struct {
	Sync *struct {
		FramesSynced int    `json:"frames_synced"`
		FrameNo      *int64 `json:"frame_no"`
	}
	Run *struct {
		Changes         int
		LastInsertRowid int64
	}
	Rows []struct {
		ID int
		V  string
	}
	Error string
}

func (o *replicaOut) values() []string {
	var vs []string
	for _, r := range o.Rows {
		vs = append(vs, r.V)
	}
	return vs
}

func mustExec(t testing.TB, db *sqlite.DB, q string, args ...any) {
	t.Helper()
	w, err := db.AcquireWriter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release(context.Background())
	if _, err := w.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func replica(t *testing.T, url, token, path, action string, arg ...string) replicaOut {
	t.Helper()
	var out replicaOut
	node(t, []string{"URL=" + url, "TOKEN=" + token}, &out, append([]string{"replica.mjs", path, action}, arg...)...)
	return out
}

func wantRows(t *testing.T, step string, out replicaOut, want ...string) {
	t.Helper()
	if out.Error != "" {
		t.Fatalf("%s: client error: %s", step, out.Error)
	}
	if got := strings.Join(out.values(), ","); got != strings.Join(want, ",") {
		t.Fatalf("%s: replica rows = [%s], want [%s]", step, got, strings.Join(want, ","))
	}
}

// TestEmbeddedReplicaJS runs the real npm libsql embedded replica (v1
// gRPC-Web sync) through its life: first sync, incremental re-sync,
// NEED_SNAPSHOT after compaction, log reset, a delegated write, and a bad
// token.
func TestEmbeddedReplicaJS(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, db, "INSERT INTO t (v) VALUES ('a'), ('b')")
	log := newMemLog(t, db)
	ts := serve(t, db, log, libsql.Config{})
	local := filepath.Join(t.TempDir(), "replica.db")

	out := replica(t, ts.url, testToken, local, "sync")
	wantRows(t, "first sync", out, "a", "b")
	if out.Sync == nil || out.Sync.FrameNo == nil || uint64(*out.Sync.FrameNo) != log.Next()-1 {
		t.Fatalf("first sync = %+v, want frame_no %d", out.Sync, log.Next()-1)
	}

	// More writes: only the new transactions are fetched.
	before := log.Next()
	mustExec(t, db, "INSERT INTO t (v) VALUES ('c')")
	log.capture(t)
	mustExec(t, db, "UPDATE t SET v = 'B' WHERE v = 'b'")
	log.capture(t)
	out = replica(t, ts.url, testToken, local, "sync")
	wantRows(t, "incremental sync", out, "a", "B", "c")
	if n := out.Sync.FramesSynced; uint64(n) != log.Next()-before {
		t.Errorf("incremental sync fetched %d frames, want the %d new ones", n, log.Next()-before)
	}

	// The log is compacted past the replica's position: NEED_SNAPSHOT, then
	// the Snapshot stream brings it up to date.
	mustExec(t, db, "INSERT INTO t (v) VALUES ('d')")
	log.capture(t)
	log.compact()
	mustExec(t, db, "INSERT INTO t (v) VALUES ('e')")
	log.capture(t)
	out = replica(t, ts.url, testToken, local, "sync")
	wantRows(t, "sync after compaction", out, "a", "B", "c", "d", "e")
	if got := uint64(*out.Sync.FrameNo); got != log.Next()-1 {
		t.Errorf("frame_no after snapshot = %d, want %d", got, log.Next()-1)
	}
	// And incremental again from there.
	mustExec(t, db, "INSERT INTO t (v) VALUES ('f')")
	log.capture(t)
	out = replica(t, ts.url, testToken, local, "sync")
	wantRows(t, "sync after snapshot", out, "a", "B", "c", "d", "e", "f")

	// A new log (new log_id): the replica starts over from the new log.
	mustExec(t, db, "DELETE FROM t WHERE v IN ('a', 'c')")
	log.reset(t)
	out = replica(t, ts.url, testToken, local, "sync")
	wantRows(t, "sync after log reset", out, "B", "d", "e", "f")

	// A write through the replica is delegated to the primary.
	out = replica(t, ts.url, testToken, local, "write", "from-replica")
	if out.Error != "" {
		t.Fatalf("delegated write: %s", out.Error)
	}
	var id int64
	var v string
	if err := db.Reader().QueryRowContext(context.Background(), "SELECT id, v FROM t ORDER BY id DESC LIMIT 1").Scan(&id, &v); err != nil {
		t.Fatal(err)
	}
	if v != "from-replica" {
		t.Fatalf("primary's last row = %q, want the delegated write", v)
	}
	if out.Run == nil || out.Run.Changes != 1 || out.Run.LastInsertRowid != id {
		t.Errorf("delegated write result = %+v, want changes 1, lastInsertRowid %d", out.Run, id)
	}

	// A bad token: the client refuses to open.
	out = replica(t, ts.url, "wrong", filepath.Join(t.TempDir(), "other.db"), "open")
	if !strings.Contains(strings.ToLower(out.Error), "unauthorized") {
		t.Errorf("bad token: error %q, want Unauthorized", out.Error)
	}
	ts.checkReleased(t)
}
