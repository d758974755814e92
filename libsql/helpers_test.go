package libsql_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/sqlite"
)

const testToken = "secret-token"

// memLog is a test-only libsql.Log over a real SQLite database: each
// capture() checkpoints and logs the pages that changed since the last
// one as a transaction (commit frame last, with size_after).
type memLog struct {
	db *sqlite.DB

	mu     sync.Mutex
	id     string
	start  uint64   // first retained frame
	frames [][]byte // frames[i] is frame start+i
	pages  [][]byte // the database as of the last logged frame
}

var _ libsql.Log = (*memLog)(nil)

var logSeq atomic.Int64

func newMemLog(t testing.TB, db *sqlite.DB) *memLog {
	l := &memLog{db: db, id: fmt.Sprintf("00000000-0000-4000-8000-%012d", logSeq.Add(1))}
	l.capture(t)
	return l
}

// capture logs what changed in the database since the last capture.
func (l *memLog) capture(t testing.TB) {
	t.Helper()
	if _, _, _, err := l.db.Checkpoint(context.Background(), "TRUNCATE"); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	data, err := os.ReadFile(l.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(data) / sqlite.PageSize
	var changed []uint32
	for i := 0; i < n; i++ {
		p := data[i*sqlite.PageSize : (i+1)*sqlite.PageSize]
		if i >= len(l.pages) || !bytes.Equal(p, l.pages[i]) {
			changed = append(changed, uint32(i+1))
		}
	}
	if len(changed) == 0 && n == len(l.pages) {
		return
	}
	if len(changed) == 0 {
		changed = []uint32{1}
	}
	next := l.start + uint64(len(l.frames))
	for k, no := range changed {
		f := make([]byte, libsql.FrameSize)
		binary.LittleEndian.PutUint64(f[0:], next+uint64(k))
		binary.LittleEndian.PutUint32(f[16:], no)
		if k == len(changed)-1 {
			binary.LittleEndian.PutUint32(f[20:], uint32(n))
		}
		copy(f[24:], data[(no-1)*sqlite.PageSize:])
		l.frames = append(l.frames, f)
	}
	l.pages = l.pages[:0]
	for i := 0; i < n; i++ {
		l.pages = append(l.pages, append([]byte(nil), data[i*sqlite.PageSize:(i+1)*sqlite.PageSize]...))
	}
}

// compact drops every frame: a replica behind now needs the snapshot.
func (l *memLog) compact() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start += uint64(len(l.frames))
	l.frames = nil
}

// reset starts a new log (new ID) holding the database as one transaction.
func (l *memLog) reset(t testing.TB) {
	l.mu.Lock()
	l.id = fmt.Sprintf("00000000-0000-4000-9000-%012d", logSeq.Add(1))
	l.start, l.frames, l.pages = 0, nil, nil
	l.mu.Unlock()
	l.capture(t)
}

func (l *memLog) ID() string { l.mu.Lock(); defer l.mu.Unlock(); return l.id }

func (l *memLog) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start + uint64(len(l.frames))
}

func (l *memLog) ReadFrames(dst []byte, from uint64, max int) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from < l.start {
		return dst, ephpm.ErrNeedSnapshot
	}
	n := 0
	for i := from - l.start; i < uint64(len(l.frames)); i++ {
		f := l.frames[i]
		dst = append(dst, f...)
		n++
		if n >= max && binary.LittleEndian.Uint32(f[20:]) != 0 {
			break
		}
	}
	return dst, nil
}

func (l *memLog) Wait(ctx context.Context, after uint64) error {
	for l.Next() <= after {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (l *memLog) Snapshot(context.Context) (libsql.Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pages := make([][]byte, len(l.pages))
	copy(pages, l.pages)
	return &memSnapshot{end: l.start + uint64(len(l.frames)) - 1, pages: pages}, nil
}

type memSnapshot struct {
	end   uint64
	pages [][]byte
}

func (s *memSnapshot) End() uint64   { return s.end }
func (s *memSnapshot) Pages() uint32 { return uint32(len(s.pages)) }
func (s *memSnapshot) Close() error  { return nil }
func (s *memSnapshot) ReadPage(no uint32, buf []byte) error {
	if no == 0 || int(no) > len(s.pages) {
		return errors.New("no such page")
	}
	copy(buf, s.pages[no-1])
	return nil
}

// testSite is one site served by a libsql server on loopback.
type testSite struct {
	db       *sqlite.DB
	log      libsql.Log
	url      string
	srv      *libsql.Server
	released atomic.Int64
	resolved atomic.Int64
}

func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	return openDBConfig(t, sqlite.Config{})
}

func openDBConfig(t testing.TB, cfg sqlite.Config) *sqlite.DB {
	t.Helper()
	cfg.Path = filepath.Join(t.TempDir(), "site.db")
	db, err := sqlite.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// serve starts a server whose resolver accepts testToken (Authorization or
// x-authorization) for the one site "alice.test".
func serve(t testing.TB, db *sqlite.DB, log libsql.Log, cfg libsql.Config) *testSite {
	t.Helper()
	ts := &testSite{db: db, log: log}
	cfg.Resolve = func(ctx context.Context, r *http.Request) (*libsql.Site, error) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = r.Header.Get("x-authorization")
		}
		if auth != "Bearer "+testToken {
			return nil, fmt.Errorf("token: %w", libsql.ErrUnauthorized)
		}
		ts.resolved.Add(1)
		return &libsql.Site{Name: "alice.test", DB: db, Log: ts.log, Release: func() { ts.released.Add(1) }}, nil
	}
	ts.srv = libsql.NewServer(cfg)
	hs := httptest.NewServer(ts.srv)
	t.Cleanup(func() {
		hs.Close()
		ts.srv.Close()
	})
	ts.url = hs.URL
	return ts
}

// checkReleased asserts that every resolved site was released.
func (ts *testSite) checkReleased(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ts.resolved.Load() != ts.released.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("sites resolved %d, released %d", ts.resolved.Load(), ts.released.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// npmClients installs the npm clients (libsql, @libsql/client) into
// testdata/npm once and returns that directory.
func npmClients(t testing.TB) string {
	t.Helper()
	return testutil.NPMInstall(t, filepath.Join("testdata", "npm"), "libsql", "@libsql/client")
}

// node runs a script from testdata/npm and decodes its JSON output.
func node(t testing.TB, env []string, out any, args ...string) {
	t.Helper()
	dir := npmClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("node %v: %v\nstdout: %s\nstderr: %s", args, err, stdout.String(), stderr.String())
	}
	line := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), out); err != nil {
		t.Fatalf("node %v: output %q: %v\nstderr: %s", args, stdout.String(), err, stderr.String())
	}
}
