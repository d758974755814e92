package libsql

import "testing"

// TestForPrimary: on a replica, what a libSQL client sends stays here
// only when it is reads outside a stream the primary holds.
func TestForPrimary(t *testing.T) {
	s := NewServer(Config{})
	defer s.Close()
	st, err := s.openStream(nil, "site")
	if err != nil {
		t.Fatal(err)
	}
	local := s.encodeBaton(st.id, st.seq)
	st.mu.Unlock()
	foreign := s.encodeBaton(st.id+1, 0) // valid HMAC, a stream this node never had
	str := func(v string) *string { return &v }
	for _, tt := range []struct {
		name  string
		baton *string
		reqs  []streamReq
		batch *hBatch
		want  bool
	}{
		{"read", nil, []streamReq{{Type: "execute", Stmt: &hStmt{SQL: str("SELECT 1")}}, {Type: "close"}}, nil, false},
		{"write", nil, []streamReq{{Type: "execute", Stmt: &hStmt{SQL: str("INSERT INTO t VALUES (1)")}}}, nil, true},
		{"begin", nil, []streamReq{{Type: "execute", Stmt: &hStmt{SQL: str("BEGIN IMMEDIATE")}}}, nil, true},
		{"sequence", nil, []streamReq{{Type: "sequence", SQL: str("SELECT 1; DELETE FROM t")}}, nil, true},
		{"stored write", nil, []streamReq{{Type: "store_sql", SQL: str("UPDATE t SET v = 1")}}, nil, true},
		{"batch write", nil, []streamReq{{Type: "batch", Batch: &hBatch{Steps: []batchStep{{Stmt: hStmt{SQL: str("SELECT 1")}}, {Stmt: hStmt{SQL: str("REPLACE INTO t VALUES (2)")}}}}}}, nil, true},
		{"cursor read", nil, nil, &hBatch{Steps: []batchStep{{Stmt: hStmt{SQL: str("SELECT 1")}}}}, false},
		{"cursor write", nil, nil, &hBatch{Steps: []batchStep{{Stmt: hStmt{SQL: str("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x")}}}}, true},
		{"local baton", &local, []streamReq{{Type: "execute", Stmt: &hStmt{SQL: str("SELECT 1")}}}, nil, false},
		{"primary's baton", &foreign, []streamReq{{Type: "execute", Stmt: &hStmt{SQL: str("SELECT 1")}}}, nil, true},
		{"bad SQL stays for its error", nil, []streamReq{{Type: "execute", Stmt: &hStmt{SQL: str("SELECT 'x")}}}, nil, false},
	} {
		if got := s.forPrimary(tt.baton, tt.reqs, tt.batch); got != tt.want {
			t.Errorf("%s: forPrimary = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestHandOver: a stream of this node that starts to write moves to the
// primary without its baton, and ends here.
func TestHandOver(t *testing.T) {
	s := NewServer(Config{})
	defer s.Close()
	st, err := s.openStream(nil, "site")
	if err != nil {
		t.Fatal(err)
	}
	baton := s.encodeBaton(st.id, st.seq)
	st.mu.Unlock()
	body := []byte(`{"baton":"` + baton + `","requests":[{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}]}`)
	if got := string(s.handOver(&baton, "other-site", body)); got != string(body) {
		t.Fatalf("another site's request changed: %s", got)
	}
	got := string(s.handOver(&baton, "site", body))
	if got != `{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}]}` {
		t.Fatalf("handed over: %s", got)
	}
	if !st.done {
		t.Fatal("the local stream is still open")
	}
}
