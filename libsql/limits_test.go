package libsql_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/sqlite"
)

const endlessHrana = `{"type":"execute","stmt":{"sql":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"}}`

// A Hrana statement past StatementTimeout is answered SQLITE_INTERRUPT,
// and the stream goes on; one interrupted inside a transaction ends the
// transaction (SQLite rolled it back) and frees the writer.
func TestHranaStatementTimeout(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{StatementTimeout: 300 * time.Millisecond})
	start := time.Now()
	r := pipeline(t, ts.url, nil, endlessHrana, `{"type":"execute","stmt":{"sql":"SELECT 41 + 1"}}`)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stopped after %v", el)
	}
	if e := r.Results[0].Error; r.Results[0].Type != "error" || e == nil || e.Code != "SQLITE_INTERRUPT" || !strings.Contains(e.Message, "time limit") {
		t.Fatalf("endless statement: %+v", r.Results[0])
	}
	if r.Results[1].Type != "ok" || !strings.Contains(string(r.Results[1].Response), `"value":"42"`) {
		t.Errorf("the stream after the timeout: %+v", r.Results[1])
	}

	r = pipeline(t, ts.url, nil,
		`{"type":"execute","stmt":{"sql":"CREATE TABLE t (v)"}}`,
		`{"type":"execute","stmt":{"sql":"BEGIN"}}`,
		`{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}`,
		`{"type":"execute","stmt":{"sql":"INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"}}`,
		`{"type":"get_autocommit"}`)
	if e := r.Results[3].Error; e == nil || e.Code != "SQLITE_INTERRUPT" {
		t.Fatalf("endless insert in a transaction: %+v", r.Results[3])
	}
	if !strings.Contains(string(r.Results[4].Response), `"is_autocommit":true`) {
		t.Errorf("after SQLite rolled back: %s", r.Results[4].Response)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatalf("the writer is still held by the stream: %v", err)
	}
	w.Release(ctx)
	var n int
	if err := db.Reader().QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after the rolled back transaction: %d %v", n, err)
	}
	if r.Baton != nil {
		pipeline(t, ts.url, r.Baton, `{"type":"close"}`)
	}
	ts.checkReleased(t)
}

// A client that leaves (its request's context ends) stops its statement,
// also one whose first row came at once (the driver watches only the
// first step).
func TestHranaStatementStopsWhenClientLeaves(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	endlessRows := `{"type":"execute","stmt":{"sql":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c WHERE x = 1 OR x < 0"}}`
	body := `{"baton":null,"requests":[` + endlessRows + `]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v3/pipeline", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-errc
	// The site is released once the statement has stopped.
	ts.checkReleased(t)
	// And the database is free: a read runs at once.
	r := pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"SELECT 1"}}`, `{"type":"close"}`)
	if r.Results[0].Type != "ok" {
		t.Errorf("after the client left: %+v", r.Results[0])
	}
	ts.checkReleased(t)
}

// Values and results are bounded: SQLITE_TOOBIG, not a growing node.
func TestHranaMemoryBounds(t *testing.T) {
	db := openDBConfig(t, sqlite.Config{MaxLength: 1 << 20})
	ts := serve(t, db, nil, libsql.Config{MaxResultSize: 1 << 20})
	r := pipeline(t, ts.url, nil,
		`{"type":"execute","stmt":{"sql":"SELECT length(randomblob(2000000))"}}`,
		`{"type":"execute","stmt":{"sql":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000) SELECT x, printf('%.*c', 1000, 'v') FROM c"}}`,
		`{"type":"execute","stmt":{"sql":"SELECT length(randomblob(500000))"}}`,
		`{"type":"close"}`)
	for i, want := range []string{"SQLITE_TOOBIG", "SQLITE_TOOBIG"} {
		if e := r.Results[i].Error; e == nil || e.Code != want {
			b, _ := json.Marshal(r.Results[i])
			t.Errorf("statement %d: %s, want %s", i, b, want)
		}
	}
	if r.Results[2].Type != "ok" {
		t.Errorf("a value under the limit: %+v", r.Results[2])
	}
	ts.checkReleased(t)
}
