package libsql_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/sqlite"
)

// fuzzServer serves one site without a network listener.
func fuzzServer(f *testing.F) *libsql.Server {
	// A body that leaves a transaction open holds the writer until its
	// stream expires: the next inputs must fail fast, not wait for it.
	db := openDBConfig(f, sqlite.Config{LockTimeout: 20 * time.Millisecond})
	mustExec(f, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
	log := newMemLog(f, db)
	srv := libsql.NewServer(libsql.Config{Resolve: func(context.Context, *http.Request) (*libsql.Site, error) {
		return &libsql.Site{Name: "fuzz", DB: db, Log: log, Release: func() {}}, nil
	}, StreamIdle: time.Millisecond})
	f.Cleanup(func() { srv.Close() })
	return srv
}

// FuzzPipeline feeds arbitrary bodies to the Hrana endpoints: nothing may
// panic, and every answer is a status the clients understand.
func FuzzPipeline(f *testing.F) {
	for _, s := range []string{
		`{"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"close"}]}`,
		`{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"INSERT INTO t (v) VALUES (?)","args":[{"type":"blob","base64":"AQI="}]}}]}`,
		`{"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"BEGIN"}},{"condition":{"type":"not","cond":{"type":"ok","step":0}},"stmt":{"sql":"ROLLBACK"}}]}}]}`,
		`{"requests":[{"type":"store_sql","sql_id":1,"sql":"SELECT :a"},{"type":"execute","stmt":{"sql_id":1,"named_args":[{"name":"a","value":{"type":"integer","value":"-9"}}]}}]}`,
		`{"requests":[{"type":"describe","sql":"SELECT * FROM t WHERE id = ?3"},{"type":"sequence","sql":"BEGIN; COMMIT"},{"type":"get_autocommit"}]}`,
		`{"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"float","value":1e308}]}}]}`,
		`{"baton":"AAAA","requests":[]}`,
		`{"batch":{"steps":[{"stmt":{"sql":"SELECT v FROM t"}}]}}`,
		`{"requests":[{"type":"execute","stmt":{"sql":"CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; END"}}]}`,
	} {
		f.Add(s)
	}
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v2/pipeline", "/v3/cursor"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			srv.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400, 413, 503:
			default:
				t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzGRPCWebFrame feeds arbitrary bodies to the gRPC-Web framing and the
// protobuf decoders, directly and through the proxy and log services.
func FuzzGRPCWebFrame(f *testing.F) {
	frame := func(msg []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	}
	val := []byte{0x0a, 0x0c, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'z', 'z'} // Value{data: text "zz"}
	f.Add(frame([]byte{8, 1}))
	f.Add(frame(program("c", "INSERT INTO t (v) VALUES (?)")))
	f.Add(frame(append(program("c", "SELECT ?"), 0x12, 0x00)))
	cond := bytesField(nil, 3, bytesField(nil, 1, bytesField(nil, 1, nil))) // not{ok{step 0}}
	query := bytesField(bytesField(nil, 1, []byte("SELECT ?")), 2, bytesField(nil, 1, val))
	step := bytesField(bytesField(nil, 1, cond), 2, query)
	f.Add(frame(bytesField(bytesField(nil, 1, []byte("c")), 2, bytesField(nil, 1, step))))
	f.Add([]byte{0x80, 0, 0, 0, 0})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0, 0, 0, 0})
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		libsql.ParseGRPCWeb(body)
		for _, m := range []string{"/proxy.Proxy/Execute", "/proxy.Proxy/Describe", "/wal_log.ReplicationLog/Hello", "/wal_log.ReplicationLog/BatchLogEntries"} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, m, bytes.NewReader(body)))
			if rec.Code != 200 {
				t.Fatalf("%s: HTTP %d", m, rec.Code)
			}
			b := rec.Body.Bytes()
			// The answer ends with exactly one trailer frame.
			for len(b) >= 5 {
				n := binary.BigEndian.Uint32(b[1:5])
				if int(n) > len(b)-5 {
					t.Fatalf("%s: frame beyond the body", m)
				}
				if b[0]&0x80 != 0 && len(b) != int(5+n) {
					t.Fatalf("%s: data after the trailer", m)
				}
				b = b[5+n:]
			}
			if len(b) != 0 {
				t.Fatalf("%s: partial frame at the end", m)
			}
		}
	})
}

// FuzzSplitSQL checks the statement lexer never panics and never loses
// text: a statement is never empty.
func FuzzSplitSQL(f *testing.F) {
	for _, s := range []string{
		"SELECT 1; SELECT 2",
		"INSERT INTO t VALUES (?, :a, @b, $c, ?7, :a)",
		"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = CASE WHEN 1 THEN 2 END; END; SELECT 1",
		"SELECT 'a;b', \"c;d\", [e;f], `g;h` -- ;\n/* ; */",
		"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
		"SELECT 'unterminated",
		"/* open",
		"?0 ?99999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		texts, _, params, err := libsql.SplitSQL(s)
		if err != nil {
			return
		}
		for i, tx := range texts {
			if tx == "" {
				t.Fatalf("empty statement %d in %q", i, s)
			}
			if params[i] > libsql.DefaultMaxParams {
				t.Fatalf("%d parameters", params[i])
			}
		}
	})
}

// FuzzBincode: every value that decodes encodes back to the same value.
func FuzzBincode(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'z', 'z'})
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f})
	f.Add([]byte{4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := libsql.DecodeBincode(b)
		if err != nil {
			return
		}
		back, err := libsql.Bincode(v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		if fv, ok := v.(float64); ok && math.IsNaN(fv) {
			return
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("round trip %#v -> %#v", v, back)
		}
	})
}
