package libsql_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ephpm/ephpm/libsql"
)

// grpcCall makes a unary gRPC-Web call and returns the response messages
// and the trailer's grpc-status / grpc-message.
func grpcCall(t *testing.T, url, method, token, session string, msg []byte) (msgs [][]byte, status, message string) {
	t.Helper()
	body := append([]byte{0}, binary.BigEndian.AppendUint32(nil, uint32(len(msg)))...)
	body = append(body, msg...)
	req, _ := http.NewRequest(http.MethodPost, url+method, strings.NewReader(string(body)))
	req.Header.Set("content-type", "application/grpc-web")
	if token != "" {
		req.Header.Set("x-authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("x-session-token", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d", method, resp.StatusCode)
	}
	for len(b) >= 5 {
		n := binary.BigEndian.Uint32(b[1:5])
		payload := b[5 : 5+n]
		if b[0]&0x80 != 0 {
			for _, l := range strings.Split(string(payload), "\r\n") {
				k, v, _ := strings.Cut(l, ":")
				switch k {
				case "grpc-status":
					status = v
				case "grpc-message":
					message = v
				}
			}
		} else {
			msgs = append(msgs, payload)
		}
		b = b[5+n:]
	}
	return msgs, status, message
}

// field returns the first field num of msg (varint value or bytes).
func field(msg []byte, num protowire.Number) (uint64, []byte, bool) {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		msg = msg[l:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, l = protowire.ConsumeVarint(msg)
		case protowire.BytesType:
			b, l = protowire.ConsumeBytes(msg)
		default:
			l = protowire.ConsumeFieldValue(n, typ, msg)
		}
		if l < 0 {
			return 0, nil, false
		}
		msg = msg[l:]
		if n == num {
			return v, b, true
		}
	}
	return 0, nil, false
}

func fields(msg []byte, num protowire.Number) [][]byte {
	var out [][]byte
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		msg = msg[l:]
		l = protowire.ConsumeFieldValue(n, typ, msg)
		if n == num && typ == protowire.BytesType {
			b, _ := protowire.ConsumeBytes(msg)
			out = append(out, b)
		}
		msg = msg[l:]
	}
	return out
}

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// program encodes a ProgramReq of plain statements.
func program(clientID string, stmts ...string) []byte {
	var pgm []byte
	for _, s := range stmts {
		q := bytesField(nil, 1, []byte(s))
		pgm = bytesField(pgm, 1, bytesField(nil, 2, q))
	}
	return bytesField(bytesField(nil, 1, []byte(clientID)), 2, pgm)
}

// TestGRPCProxy checks the write proxy: a transaction spans calls of one
// client_id, other clients wait for it, and every result is filled.
func TestGRPCProxy(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
	log := newMemLog(t, db)
	ts := serve(t, db, log, libsql.Config{})

	msgs, st, m := grpcCall(t, ts.url, "/proxy.Proxy/Execute", testToken, "", program("c1", "BEGIN", "INSERT INTO t (v) VALUES ('a')"))
	if st != "0" || len(msgs) != 1 {
		t.Fatalf("execute: status %s %s", st, m)
	}
	results := fields(msgs[0], 1)
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	if state, _, _ := field(msgs[0], 2); state != 2 {
		t.Errorf("state = %d, want TXN (2)", state)
	}
	_, rows, ok := field(results[1], 2)
	if !ok {
		t.Fatalf("insert result has no row_result")
	}
	if n, _, _ := field(rows, 3); n != 1 {
		t.Errorf("affected_row_count = %d, want 1", n)
	}
	if id, _, _ := field(rows, 4); id != 1 {
		t.Errorf("last_insert_rowid = %d, want 1", id)
	}
	if fno, _, ok := field(msgs[0], 3); !ok || fno != log.Next()-1 {
		t.Errorf("current_frame_no = %d (%v), want %d", fno, ok, log.Next()-1)
	}

	// The same client commits in a later call; a constraint error is a
	// per-step error with SQLite's extended code.
	msgs, st, _ = grpcCall(t, ts.url, "/proxy.Proxy/Execute", testToken, "", program("c1", "INSERT INTO t (v) VALUES ('a')", "COMMIT"))
	if st != "0" {
		t.Fatalf("status %s", st)
	}
	results = fields(msgs[0], 1)
	_, perr, ok := field(results[0], 1)
	if !ok {
		t.Fatalf("duplicate insert: no error result")
	}
	if ext, _, _ := field(perr, 3); ext != 2067 {
		t.Errorf("extended code = %d, want 2067 (SQLITE_CONSTRAINT_UNIQUE)", ext)
	}
	if state, _, _ := field(msgs[0], 2); state != 0 {
		t.Errorf("state after COMMIT = %d, want INIT", state)
	}
	var n int
	db.Reader().QueryRow("SELECT count(*) FROM t").Scan(&n)
	if n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}

	// Describe.
	msgs, st, _ = grpcCall(t, ts.url, "/proxy.Proxy/Describe", testToken, "", bytesField(bytesField(nil, 1, []byte("c2")), 2, []byte("SELECT id, v FROM t WHERE v = ?")))
	if st != "0" {
		t.Fatalf("describe status %s", st)
	}
	_, desc, ok := field(msgs[0], 2)
	if !ok {
		t.Fatal("describe: no description")
	}
	if pc, _, _ := field(desc, 3); pc != 1 {
		t.Errorf("param_count = %d, want 1", pc)
	}
	if cols := fields(desc, 1); len(cols) != 2 {
		t.Errorf("%d columns, want 2", len(cols))
	}
	ts.checkReleased(t)
}

// TestGRPCReplicationErrors checks the status codes the client acts on.
func TestGRPCReplicationErrors(t *testing.T) {
	db := openDB(t)
	log := newMemLog(t, db)
	ts := serve(t, db, log, libsql.Config{})
	noLog := serve(t, openDB(t), nil, libsql.Config{})
	offset0 := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 0)

	msgs, st, _ := grpcCall(t, ts.url, "/wal_log.ReplicationLog/Hello", testToken, "", []byte{8, 1})
	if st != "0" {
		t.Fatalf("hello: %s", st)
	}
	_, logID, _ := field(msgs[0], 3)
	_, token, _ := field(msgs[0], 4)
	if string(logID) != log.ID() || len(token) != 36 {
		t.Errorf("hello: log_id %q token %q", logID, token)
	}
	cases := []struct {
		name, url, method, token, session string
		msg                               []byte
		status, message                   string
	}{
		{"frames", ts.url, "/wal_log.ReplicationLog/BatchLogEntries", testToken, string(token), offset0, "0", ""},
		{"no hello", ts.url, "/wal_log.ReplicationLog/BatchLogEntries", testToken, "", offset0, "9", "NO_HELLO"},
		{"wrong session", ts.url, "/wal_log.ReplicationLog/Snapshot", testToken, "00000000-0000-4000-8000-000000000000", offset0, "9", "NO_HELLO"},
		{"unauthenticated", ts.url, "/wal_log.ReplicationLog/Hello", "bad", "", nil, "16", ""},
		{"not a primary", noLog.url, "/wal_log.ReplicationLog/Hello", testToken, "", nil, "3", "not a primary"},
		{"libsql wal flavor", ts.url, "/wal_log.ReplicationLog/BatchLogEntries", testToken, string(token), append(append([]byte{}, offset0...), 0x10, 1), "3", ""},
		{"unknown method", ts.url, "/proxy.Proxy/StreamExec", testToken, string(token), offset0, "12", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, st, m := grpcCall(t, tc.url, tc.method, tc.token, tc.session, tc.msg)
			if st != tc.status || !strings.Contains(m, tc.message) {
				t.Errorf("status %s %q, want %s %q", st, m, tc.status, tc.message)
			}
			if tc.name == "frames" {
				frames := fields(msgs[0], 1)
				if uint64(len(frames)) != log.Next() {
					t.Errorf("%d frames, want %d", len(frames), log.Next())
				}
				for _, f := range frames {
					if _, data, _ := field(f, 1); len(data) != libsql.FrameSize {
						t.Errorf("frame of %d bytes", len(data))
					}
				}
			}
		})
	}
	log.compact()
	_, st, m := grpcCall(t, ts.url, "/wal_log.ReplicationLog/BatchLogEntries", testToken, string(token), offset0)
	if st != "9" || m != "NEED_SNAPSHOT" {
		t.Errorf("compacted: %s %q, want 9 NEED_SNAPSHOT", st, m)
	}
}

// TestLogEntriesPush: LogEntries keeps the call open and pushes each new
// transaction as soon as it is logged.
func TestLogEntriesPush(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE TABLE t (v)")
	log := newMemLog(t, db)
	ts := serve(t, db, log, libsql.Config{})
	msgs, _, _ := grpcCall(t, ts.url, "/wal_log.ReplicationLog/Hello", testToken, "", nil)
	_, token, _ := field(msgs[0], 4)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	from := log.Next()
	msg := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), from)
	body := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/wal_log.ReplicationLog/LogEntries", bytes.NewReader(body))
	req.Header.Set("x-authorization", "Bearer "+testToken)
	req.Header.Set("x-session-token", string(token))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	readFrame := func() uint64 {
		t.Helper()
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, hdr); err != nil {
			t.Fatalf("read: %v", err)
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(resp.Body, payload); err != nil || hdr[0] != 0 {
			t.Fatalf("read: flag %x %v", hdr[0], err)
		}
		_, data, _ := field(payload, 1)
		if len(data) != libsql.FrameSize {
			t.Fatalf("frame of %d bytes", len(data))
		}
		return binary.LittleEndian.Uint64(data)
	}
	for round := 0; round < 2; round++ {
		mustExec(t, db, "INSERT INTO t VALUES (?)", round)
		log.capture(t)
		for no := from; no < log.Next(); no++ {
			if got := readFrame(); got != no {
				t.Fatalf("round %d: frame %d, want %d", round, got, no)
			}
		}
		from = log.Next()
	}
}
