package libsql_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/libsql"
)

// A primary without its lease: Hrana answers writes (and a COMMIT across
// the lease's end) with an error result naming why, at once; reads go on.
func TestNoLeaseIsAnErrorResult(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE TABLE t (v)")
	mustExec(t, db, "INSERT INTO t VALUES ('x')")
	noLease := fmt.Errorf("site example.com: this node's primary lease lapsed (the cluster directory is unreachable); writes refused, reads still served: %w", ephpm.ErrNoLease)
	var lapsed atomic.Bool
	db.SetCommitCheck(func() error {
		if lapsed.Load() {
			return noLease
		}
		return nil
	})
	ts := serve(t, db, nil, libsql.Config{})
	r := pipeline(t, ts.url, nil,
		`{"type":"execute","stmt":{"sql":"BEGIN"}}`,
		`{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES ('y')"}}`)
	lapsed.Store(true)
	r = pipeline(t, ts.url, r.Baton,
		`{"type":"execute","stmt":{"sql":"COMMIT"}}`,
		`{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES ('z') RETURNING v"}}`,
		`{"type":"close"}`)
	for i := range 2 {
		if e := r.Results[i].Error; e == nil || e.Code != "SQLITE_READONLY" || !strings.Contains(e.Message, "primary lease lapsed") {
			t.Errorf("request %d without the lease: %+v, want SQLITE_READONLY naming the lease", i, e)
		}
	}
	db.SetRefused(noLease)
	r = pipeline(t, ts.url, nil,
		`{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES ('w')"}}`,
		`{"type":"execute","stmt":{"sql":"SELECT count(*) FROM t"}}`,
		`{"type":"close"}`)
	if e := r.Results[0].Error; e == nil || e.Code != "SQLITE_READONLY" || !strings.Contains(e.Message, "site example.com: this node's primary lease lapsed") {
		t.Errorf("write at the refusing gate: %+v", e)
	}
	if !strings.Contains(string(r.Results[1].Response), `"value":"1"`) {
		t.Errorf("read without the lease: %s %+v", r.Results[1].Response, r.Results[1].Error)
	}
	ts.checkReleased(t)
}
