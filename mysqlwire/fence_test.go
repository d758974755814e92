package mysqlwire_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
)

// fakeForwarder stands for the new primary: it records what it gets.
type fakeForwarder struct {
	mu      sync.Mutex
	got     []string
	changed int  // Exec calls left that answer ErrPrimaryChanged
	here    bool // answer ErrPrimaryHere: this node was promoted
}

func (f *fakeForwarder) Open() mysqlwire.ForwardSession { return &fakeFwdSession{f: f} }

type fakeFwdSession struct{ f *fakeForwarder }

func (s *fakeFwdSession) Exec(_ context.Context, query string, _ []any) (*ephpm.Result, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.here {
		return nil, fmt.Errorf("promoted: %w", mysqlwire.ErrPrimaryHere)
	}
	if s.f.changed > 0 {
		s.f.changed--
		return nil, fmt.Errorf("moved: %w", mysqlwire.ErrPrimaryChanged)
	}
	s.f.got = append(s.f.got, query)
	return &ephpm.Result{RowsAffected: 1}, nil
}
func (s *fakeFwdSession) InTx() bool                    { return false }
func (s *fakeFwdSession) Wait(ctx context.Context) bool { return true }
func (s *fakeFwdSession) Close()                        {}

func (f *fakeForwarder) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func startForwardingServer(t *testing.T, fwd mysqlwire.Forwarder) (*sqlite.DB, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "site.db"), Functions: mysqlwire.SQLiteFunctions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := mysqlwire.New(mysqlwire.Config{
		Listen: "127.0.0.1:0", Socket: filepath.Join(dir, "mysql.sock"), Translator: passthrough{},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Sites: mysqlwire.StaticDirectory{testUser: {
			User: testUser, Password: testPassword, Database: testDB, Forward: fwd,
			Open: func(context.Context) (*sqlite.DB, func(), error) { return db, func() {}, nil },
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s", testUser, testPassword, srv.Addr(), testDB))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return db, c
}

// A write waiting at the fence of a primary that is then demoted goes to
// the new primary: the client sees it succeed.
func TestFencedWriteIsForwardedAfterDemotion(t *testing.T) {
	fwd := &fakeForwarder{}
	db, c := startForwardingServer(t, fwd)
	mustExec(t, c, "CREATE TABLE f (a INTEGER)")
	db.SetFenced(true)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec("INSERT INTO f VALUES (1)")
		done <- err
	}()
	// Once it waits at the gate, the demotion comes.
	testutil.RetryUntil(t, 5*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("the write passed the fence: %v", err)
		default:
		}
		if db.FenceWaiters() != 1 {
			return fmt.Errorf("%d writers at the fence", db.FenceWaiters())
		}
		return nil
	})
	db.SetReadOnly(true)
	if err := <-done; err != nil {
		t.Fatalf("fenced write after the demotion: %v, want it forwarded", err)
	}
	if got := fwd.statements(); len(got) != 1 || got[0] != "INSERT INTO f VALUES (1)" {
		t.Fatalf("forwarded %q", got)
	}
	if n := count(t, db); n != 0 {
		t.Errorf("the write also ran locally: %d rows", n)
	}
}

// A forwarded session whose primary moved starts again on the new one.
func TestForwardSessionReopensWhenThePrimaryMoved(t *testing.T) {
	fwd := &fakeForwarder{changed: 1}
	db, c := startForwardingServer(t, fwd)
	mustExec(t, c, "CREATE TABLE f (a INTEGER)")
	db.SetReadOnly(true)
	mustExec(t, c, "INSERT INTO f VALUES (2)")
	if got := fwd.statements(); len(got) != 1 {
		t.Fatalf("forwarded %q, want the insert once", got)
	}
}

func count(t *testing.T, db *sqlite.DB) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow("SELECT count(*) FROM f").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A write that arrives while this node is being promoted (the directory
// already names it, its copy is not writable yet) waits and runs here.
func TestWriteDuringPromotionRunsHere(t *testing.T) {
	fwd := &fakeForwarder{here: true}
	db, c := startForwardingServer(t, fwd)
	mustExec(t, c, "CREATE TABLE f (a INTEGER)")
	db.SetReadOnly(true)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec("INSERT INTO f VALUES (3)")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the write did not wait for the promotion: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	db.SetReadOnly(false) // the promotion ends
	if err := <-done; err != nil {
		t.Fatalf("write during the promotion: %v", err)
	}
	if n := count(t, db); n != 1 {
		t.Errorf("%d rows here, want the write run locally", n)
	}
	if got := fwd.statements(); len(got) != 0 {
		t.Errorf("forwarded %q", got)
	}
}
