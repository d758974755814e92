package replication_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/replication"
)

// fakeSession is a primary's statement session that answers what it is
// told and records how it was used.
type fakeSession struct {
	mu         sync.Mutex
	res        *ephpm.Result
	err        error
	runs       int
	closes     int
	afterClose bool // Run or InTx after Close
}

func (f *fakeSession) Run(query string, args []any) (*ephpm.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	f.afterClose = f.afterClose || f.closes > 0
	return f.res, f.err
}

func (f *fakeSession) InTx() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.afterClose = f.afterClose || f.closes > 0
	return false
}

func (f *fakeSession) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
}

// startForwarding starts a primary whose forwarded sessions are the
// fakes sessions() gives, and a replica of site s.com.
func startForwarding(t *testing.T, sessions func() *fakeSession) (p, r *node) {
	t.Helper()
	root := t.TempDir()
	p = startNodeWith(t, filepath.Join(root, "frankfurt"), 0, func(c *replication.Config) {
		c.OpenSession = func(context.Context, string) (replication.StatementSession, error) { return sessions(), nil }
	})
	r = startNode(t, filepath.Join(root, "tokyo"), 0)
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	setup(p, r, "s.com")
	return p, r
}

// What the primary's session answers reaches the replica's MySQL front
// as it was: the neutral result (NULL and empty values apart, large
// numbers, binary) and the statement's SQL error.
func TestForwardedStatementResult(t *testing.T) {
	fake := &fakeSession{res: &ephpm.Result{
		Columns: []ephpm.Column{
			{Name: "id", Type: "BIGINT UNSIGNED", Table: "t", Length: 20, Charset: 63, Flags: 32},
			{Name: "b", Type: "BLOB", Charset: 63, Flags: 144},
		},
		Rows: [][]ephpm.Value{
			{ephpm.Value("18446744073709551615"), ephpm.Value{0, 0xff, '"'}},
			{nil, ephpm.Value{}},
		},
		RowsAffected: 2, InsertID: 1 << 62, InsertIDChanged: true,
	}}
	_, r := startForwarding(t, func() *fakeSession { return fake })
	ctx := context.Background()
	sess := r.m.Forwarder("s.com").Open()
	got, err := sess.Exec(ctx, "SELECT ?", []any{int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fake.res) {
		t.Errorf("result: got %#v\nwant %#v", got, fake.res)
	}
	want := &ephpm.SQLError{Code: 1062, State: "23000", Message: "Duplicate entry for key 'PRIMARY'"}
	fake.mu.Lock()
	fake.res, fake.err = nil, want
	fake.mu.Unlock()
	_, err = sess.Exec(ctx, "INSERT INTO t VALUES (1)", nil)
	var se *ephpm.SQLError
	if !errors.As(err, &se) || *se != *want {
		t.Errorf("error: got %#v, want %#v", err, want)
	}
	sess.Close()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.runs != 2 || fake.closes != 1 || fake.afterClose {
		t.Errorf("session used: %d runs, %d closes, used after close %v", fake.runs, fake.closes, fake.afterClose)
	}
}

// Closing the primary's manager closes every forwarded session once; a
// later statement of one hears that it expired, and a new session is
// refused (and closed, not left open).
func TestForwardedSessionsCloseWithManager(t *testing.T) {
	var mu sync.Mutex
	var fakes []*fakeSession
	p, r := startForwarding(t, func() *fakeSession {
		mu.Lock()
		defer mu.Unlock()
		f := &fakeSession{res: &ephpm.Result{RowsAffected: 1}}
		fakes = append(fakes, f)
		return f
	})
	ctx := context.Background()
	sess := r.m.Forwarder("s.com").Open()
	if _, err := sess.Exec(ctx, "INSERT INTO t VALUES (1)", nil); err != nil {
		t.Fatal(err)
	}
	p.m.Close()
	_, err := sess.Exec(ctx, "INSERT INTO t VALUES (2)", nil)
	var se *ephpm.SQLError
	if !errors.As(err, &se) || se.Code != 1317 {
		t.Errorf("statement after the primary closed its sessions: %v, want 1317 (expired)", err)
	}
	if _, err := r.m.Forwarder("s.com").Open().Exec(ctx, "INSERT INTO t VALUES (3)", nil); err == nil {
		t.Error("a new session was opened on a closed manager")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, f := range fakes {
		if f.closes != 1 || f.afterClose {
			t.Errorf("session %d: closed %d times, used after close %v", i, f.closes, f.afterClose)
		}
	}
	if len(fakes) != 2 {
		t.Errorf("%d sessions opened, want 2", len(fakes))
	}
}
