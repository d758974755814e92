package libsql_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/libsql"
)

// TestLibsqlClientJS drives the Hrana endpoint with the real npm
// @libsql/client: statements, a write batch failing on a constraint, an
// interactive transaction, and every value type.
func TestLibsqlClientJS(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{})
	var out struct {
		Fatal  string
		Insert struct {
			RowsAffected    int
			LastInsertRowid string
		}
		BatchError       *struct{ Code, Message string }
		AfterFailedBatch []map[string]any
		BatchOk          []struct {
			RowsAffected    int
			LastInsertRowid string
		}
		TxSees        []map[string]string
		AfterRollback []map[string]string
		AfterCommit   []map[string]string
		Values        []map[string]any
		ParseError    *struct{ Code, Message string }
	}
	node(t, []string{"URL=" + ts.url, "TOKEN=" + testToken}, &out, "hrana.mjs")
	if out.Fatal != "" {
		t.Fatalf("client failed: %s", out.Fatal)
	}
	if out.Insert.RowsAffected != 1 || out.Insert.LastInsertRowid != "1" {
		t.Errorf("insert = %+v, want 1 row, rowid 1", out.Insert)
	}
	if out.BatchError == nil || out.BatchError.Code != "SQLITE_CONSTRAINT" {
		t.Errorf("failing batch error = %+v, want SQLITE_CONSTRAINT", out.BatchError)
	}
	if got := out.AfterFailedBatch; len(got) != 1 || got[0]["v"] != "first" {
		t.Errorf("rows after the failed batch = %v, want only [first] (batch rolled back)", got)
	}
	if len(out.BatchOk) != 2 || out.BatchOk[0].RowsAffected != 1 || out.BatchOk[1].LastInsertRowid == "" {
		t.Errorf("batch results = %+v", out.BatchOk)
	}
	if got := out.TxSees; len(got) != 1 || got[0]["c"] != "1" {
		t.Errorf("transaction sees %v, want its own row", got)
	}
	if got := out.AfterRollback; len(got) != 1 || got[0]["c"] != "0" {
		t.Errorf("after rollback %v, want 0", got)
	}
	if got := out.AfterCommit; len(got) != 1 || got[0]["c"] != "1" {
		t.Errorf("after commit %v, want 1", got)
	}
	wantVals := []map[string]any{
		{"id": "100", "v": "héllo ☃", "n": "9007199254740993", "f": 3.25, "b": []any{0.0, 1.0, 2.0, 255.0}, "tn": "integer", "tf": "real", "tb": "blob"},
		{"id": "101", "v": nil, "n": "-5", "f": -0.5, "b": nil, "tn": "integer", "tf": "real", "tb": "null"},
	}
	if !reflect.DeepEqual(out.Values, wantVals) {
		t.Errorf("values round trip:\n got %v\nwant %v", out.Values, wantVals)
	}
	if out.ParseError == nil || !strings.Contains(out.ParseError.Message, "no such table") {
		t.Errorf("error for a missing table = %+v", out.ParseError)
	}

	// The rows are really in the site's database.
	var n int
	if err := db.Reader().QueryRowContext(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 6 { // first, b1, b2, committed, 100, 101
		t.Errorf("rows in the database = %d, want 6", n)
	}
	ts.checkReleased(t)
}
