package libsql_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/libsql"
)

func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type pipelineResp struct {
	Baton   *string
	Results []struct {
		Type     string
		Response json.RawMessage
		Error    *struct{ Message, Code string }
	}
}

func pipeline(t *testing.T, url string, baton *string, reqs ...string) pipelineResp {
	t.Helper()
	b, _ := json.Marshal(baton)
	status, body := post(t, url+"/v3/pipeline", testToken, `{"baton":`+string(b)+`,"requests":[`+strings.Join(reqs, ",")+`]}`)
	if status != http.StatusOK {
		t.Fatalf("pipeline: %d %s", status, body)
	}
	var r pipelineResp
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("pipeline response %q: %v", body, err)
	}
	return r
}

// TestPipeline checks the Hrana request types against what the spec
// says, on the wire.
func TestPipeline(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{})
	pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"CREATE TABLE t (id INTEGER PRIMARY KEY, v)"}}`, `{"type":"close"}`)

	cases := []struct {
		name string
		reqs []string
		want []string // substrings of each result, in order
	}{
		{"values on the wire",
			[]string{`{"type":"execute","stmt":{"sql":"SELECT ?, ?, ?, ?, ?","args":[{"type":"integer","value":"9223372036854775807"},{"type":"float","value":1},{"type":"text","value":"x"},{"type":"blob","base64":"AQI="},{"type":"null"}]}}`},
			[]string{`"rows":[[{"type":"integer","value":"9223372036854775807"},{"type":"float","value":1},{"type":"text","value":"x"},{"type":"blob","base64":"AQI"},{"type":"null"}]]`}},
		{"insert reports rowid and changes",
			[]string{`{"type":"execute","stmt":{"sql":"INSERT INTO t (v) VALUES (:v)","named_args":[{"name":":v","value":{"type":"text","value":"a"}}]}}`},
			[]string{`"affected_row_count":1,"last_insert_rowid":"1"`}},
		{"want_rows false",
			[]string{`{"type":"execute","stmt":{"sql":"SELECT v FROM t","want_rows":false}}`},
			[]string{`"rows":[]`}},
		{"stored sql",
			[]string{`{"type":"store_sql","sql_id":7,"sql":"SELECT count(*) AS c FROM t"}`, `{"type":"execute","stmt":{"sql_id":7}}`, `{"type":"close_sql","sql_id":7}`, `{"type":"execute","stmt":{"sql_id":7}}`},
			[]string{`"type":"store_sql"`, `"cols":[{"name":"c","decltype":null}],"rows":[[{"type":"integer","value":"1"}]]`, `"type":"close_sql"`, `"SQL_NOT_FOUND"`}},
		{"sequence and autocommit",
			[]string{`{"type":"sequence","sql":"BEGIN; INSERT INTO t (v) VALUES ('s1'); INSERT INTO t (v) VALUES ('s2');"}`, `{"type":"get_autocommit"}`, `{"type":"sequence","sql":"COMMIT"}`, `{"type":"get_autocommit"}`},
			[]string{`"type":"sequence"`, `"is_autocommit":false`, `"type":"sequence"`, `"is_autocommit":true`}},
		{"describe",
			[]string{`{"type":"describe","sql":"SELECT id, v FROM t WHERE id = :id AND v = ?"}`, `{"type":"describe","sql":"INSERT INTO t (v) VALUES (?1)"}`},
			[]string{`"params":[{"name":":id"},{"name":null}],"cols":[{"name":"id","decltype":"INTEGER"},{"name":"v","decltype":null}],"is_explain":false,"is_readonly":true`, `"params":[{"name":null}],"cols":[],"is_explain":false,"is_readonly":false`}},
		{"batch conditions",
			[]string{`{"type":"batch","batch":{"steps":[
				{"stmt":{"sql":"BEGIN"}},
				{"condition":{"type":"ok","step":0},"stmt":{"sql":"INSERT INTO t (id, v) VALUES (1, 'dup')"}},
				{"condition":{"type":"error","step":1},"stmt":{"sql":"ROLLBACK"}},
				{"condition":{"type":"not","cond":{"type":"is_autocommit"}},"stmt":{"sql":"SELECT 'not run'"}},
				{"condition":{"type":"and","conds":[{"type":"ok","step":2},{"type":"is_autocommit"}]},"stmt":{"sql":"SELECT 'ran'"}}
			]}}`},
			[]string{`"step_results":[{"cols":[]`}},
		{"errors per request",
			[]string{`{"type":"execute","stmt":{"sql":"SELEC 1"}}`, `{"type":"execute","stmt":{"sql":"SELECT 1; SELECT 2"}}`, `{"type":"execute","stmt":{"sql":"SELECT ?"}}`, `{"type":"execute","stmt":{"sql":"SELECT 1"}}`},
			[]string{`"SQLITE_ERROR"`, `"SQL_MANY_STATEMENTS"`, `"ARGS_INVALID"`, `"Type":"ok"`}},
		{"authorizer refuses ATTACH",
			[]string{`{"type":"execute","stmt":{"sql":"ATTACH '/tmp/x.db' AS x"}}`},
			[]string{`"SQLITE_AUTH"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := pipeline(t, ts.url, nil, append(tc.reqs, `{"type":"close"}`)...)
			if r.Baton != nil {
				t.Errorf("baton after close = %q, want null", *r.Baton)
			}
			if len(r.Results) != len(tc.reqs)+1 {
				t.Fatalf("%d results for %d requests", len(r.Results), len(tc.reqs)+1)
			}
			for i, want := range tc.want {
				raw, _ := json.Marshal(r.Results[i])
				if !strings.Contains(string(raw), want) {
					t.Errorf("result %d = %s\nwant it to contain %s", i, raw, want)
				}
			}
		})
	}

	// The batch above: step 1 failed, 2 rolled back, 3 was skipped, 4 ran.
	r := pipeline(t, ts.url, nil, `{"type":"batch","batch":{"steps":[
		{"stmt":{"sql":"BEGIN"}},
		{"condition":{"type":"ok","step":0},"stmt":{"sql":"INSERT INTO t (id, v) VALUES (1, 'dup')"}},
		{"condition":{"type":"error","step":1},"stmt":{"sql":"ROLLBACK"}},
		{"condition":{"type":"not","cond":{"type":"is_autocommit"}},"stmt":{"sql":"SELECT 'not run'"}},
		{"condition":{"type":"and","conds":[{"type":"ok","step":2},{"type":"is_autocommit"}]},"stmt":{"sql":"SELECT 'ran'"}}
	]}}`, `{"type":"close"}`)
	var br struct {
		Result struct {
			StepResults []json.RawMessage `json:"step_results"`
			StepErrors  []json.RawMessage `json:"step_errors"`
		}
	}
	if err := json.Unmarshal(r.Results[0].Response, &br); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for i := range br.Result.StepResults {
		switch {
		case string(br.Result.StepErrors[i]) != "null":
			got = append(got, "error")
		case string(br.Result.StepResults[i]) != "null":
			got = append(got, "ok")
		default:
			got = append(got, "skipped")
		}
	}
	if strings.Join(got, ",") != "ok,error,ok,skipped,ok" {
		t.Errorf("batch steps = %v, want ok,error,ok,skipped,ok", got)
	}
	ts.checkReleased(t)
}

// TestStreams checks batons: continuation, reuse, forgery, expiry (which
// rolls back and frees the writer) and the bound on open streams.
func TestStreams(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{StreamIdle: 100 * time.Millisecond, MaxStreams: 3})
	pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"CREATE TABLE t (v)"}}`, `{"type":"close"}`)

	r := pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"BEGIN"}}`, `{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}`)
	if r.Baton == nil {
		t.Fatal("no baton for an open stream")
	}
	first := *r.Baton
	r = pipeline(t, ts.url, &first, `{"type":"get_autocommit"}`)
	if !strings.Contains(string(r.Results[0].Response), `"is_autocommit":false`) {
		t.Errorf("the transaction did not span requests: %s", r.Results[0].Response)
	}

	// The old baton is spent.
	status, body := post(t, ts.url+"/v3/pipeline", testToken, `{"baton":"`+first+`","requests":[]}`)
	if status != http.StatusBadRequest {
		t.Errorf("reused baton: %d %s, want 400", status, body)
	}
	// A forged one is refused.
	forged := []byte(*r.Baton)
	forged[len(forged)-2] ^= 1
	status, body = post(t, ts.url+"/v3/pipeline", testToken, `{"baton":"`+string(forged)+`","requests":[]}`)
	if status != http.StatusBadRequest {
		t.Errorf("forged baton: %d %s, want 400", status, body)
	}

	// Left idle, the stream expires: its transaction is rolled back and
	// the writer is free for others.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		w, err := db.AcquireWriter(ctx)
		cancel()
		if err == nil {
			w.Release(context.Background())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle stream still holds the writer: %v", err)
		}
	}
	status, body = post(t, ts.url+"/v3/pipeline", testToken, `{"baton":"`+*r.Baton+`","requests":[]}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "STREAM_EXPIRED") {
		t.Fatalf("expired stream: %d %s, want 400 STREAM_EXPIRED", status, body)
	}
	r = pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (2)"}}`, `{"type":"execute","stmt":{"sql":"SELECT group_concat(v) AS v FROM t"}}`, `{"type":"close"}`)
	if !strings.Contains(string(r.Results[1].Response), `"rows":[[{"type":"text","value":"2"}]]`) {
		t.Errorf("after expiry: %s, want only the new row", r.Results[1].Response)
	}
	ts.checkReleased(t)

	// At most MaxStreams open streams.
	for i := 0; i < 3; i++ {
		pipeline(t, ts.url, nil, `{"type":"get_autocommit"}`)
	}
	status, body = post(t, ts.url+"/v3/pipeline", testToken, `{"requests":[]}`)
	if status != http.StatusServiceUnavailable {
		t.Errorf("stream over the limit: %d %s, want 503", status, body)
	}
}

// TestCursor checks /v3/cursor's JSON lines.
func TestCursor(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{})
	status, body := post(t, ts.url+"/v3/cursor", testToken, `{"batch":{"steps":[
		{"stmt":{"sql":"CREATE TABLE t (v TEXT)"}},
		{"stmt":{"sql":"INSERT INTO t VALUES ('a'), ('b')"}},
		{"stmt":{"sql":"SELECT v FROM t ORDER BY v"}},
		{"stmt":{"sql":"SELECT nope FROM t"}}
	]}}`)
	if status != http.StatusOK {
		t.Fatalf("cursor: %d %s", status, body)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(body))
	first := true
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if first {
			if _, ok := e["baton"]; !ok {
				t.Fatalf("first line %q has no baton", sc.Text())
			}
			first = false
			continue
		}
		types = append(types, e["type"].(string))
	}
	want := "step_begin,step_end,step_begin,step_end,step_begin,row,row,step_end,step_error"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("cursor entries = %s\nwant %s", got, want)
	}
	if !strings.Contains(body, `{"type":"row","row":[{"type":"text","value":"a"}]}`) {
		t.Errorf("cursor body lacks row a: %s", body)
	}
}

// TestAuthAndRoutes checks the answers outside a stream.
func TestAuthAndRoutes(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{Version: "test-1"})
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, method, path, token, body string
		status                          int
		contains                        string
	}{
		{"health", "GET", "/health", "", "", 200, ""},
		{"version", "GET", "/version", "", "", 200, "test-1"},
		{"v2", "GET", "/v2", "", "", 200, "Hrana"},
		{"v3", "GET", "/v3", "", "", 200, "Hrana"},
		{"no protobuf", "GET", "/v3-protobuf", "", "", 404, ""},
		{"info selects v1", "GET", "/info", testToken, "", 404, ""},
		{"info unauthorized", "GET", "/info", "bad", "", 401, ""},
		{"pipeline unauthorized", "POST", "/v2/pipeline", "bad", `{"requests":[]}`, 401, `"error"`},
		{"pipeline without token", "POST", "/v2/pipeline", "", `{"requests":[]}`, 401, `"message"`},
		{"bad json", "POST", "/v2/pipeline", testToken, `{"requests":`, 400, ""},
		{"unknown path", "GET", "/nope", testToken, "", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body string
			if tc.method == "GET" {
				status, body = get(tc.path, tc.token)
			} else {
				status, body = post(t, ts.url+tc.path, tc.token, tc.body)
			}
			if status != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, status, body, tc.status, tc.contains)
			}
		})
	}
	ts.checkReleased(t)
}

// TestReplicaSiteRefusesWrites: on a read-only (replica) database reads
// work and writes fail with "not the primary".
func TestReplicaSiteRefusesWrites(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE TABLE t (v)")
	mustExec(t, db, "INSERT INTO t VALUES ('x')")
	db.SetReadOnly(true)
	ts := serve(t, db, nil, libsql.Config{})
	r := pipeline(t, ts.url, nil,
		`{"type":"execute","stmt":{"sql":"SELECT v FROM t"}}`,
		`{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES ('y')"}}`,
		`{"type":"execute","stmt":{"sql":"BEGIN"}}`,
		`{"type":"close"}`)
	if !strings.Contains(string(r.Results[0].Response), `"value":"x"`) {
		t.Errorf("read on a replica: %s", r.Results[0].Response)
	}
	for _, i := range []int{1, 2} {
		if e := r.Results[i].Error; e == nil || e.Code != "SQLITE_READONLY" || e.Message != "not the primary" {
			t.Errorf("request %d on a replica: %+v, want SQLITE_READONLY not the primary", i, e)
		}
	}
	ts.checkReleased(t)
}

// A closed server rolls back open transactions.
func TestCloseRollsBack(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{})
	pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"CREATE TABLE t (v)"}}`, `{"type":"close"}`)
	pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"BEGIN"}}`, `{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}`)
	ts.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatalf("writer still held after Close: %v", err)
	}
	w.Release(ctx)
	var n int
	db.Reader().QueryRow("SELECT count(*) FROM t").Scan(&n)
	if n != 0 {
		t.Errorf("rows after Close = %d, want 0 (rolled back)", n)
	}
	ts.checkReleased(t)
}
