package framelog_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

var errInjected = errors.New("injected: fsync of the directory failed")

// failingDirSync makes the log's directory syncs fail while fail is set.
func failingDirSync(t *testing.T) *atomic.Bool {
	var fail atomic.Bool
	var real func(string) error
	real, restore := framelog.SetSyncDir(func(dir string) error {
		if fail.Load() {
			return errInjected
		}
		return real(dir)
	})
	t.Cleanup(restore)
	return &fail
}

// insert runs one INSERT on the writer and returns its error.
func insert(db *sqlite.DB, n int) error {
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	_, err = w.ExecContext(ctx, "INSERT INTO t (b) VALUES (?)", strings.Repeat("z", 500+n))
	return err
}

// A new log is durable under its name before Open returns: a failed
// directory sync fails Open, and the next Open finds the log.
func TestDirSyncFailureFailsOpen(t *testing.T) {
	ctx := context.Background()
	fail := failingDirSync(t)
	db := openDB(t, filepath.Join(t.TempDir(), "p.db"), false)
	fail.Store(true)
	if l, err := framelog.Open(ctx, db, framelog.Options{}); !errors.Is(err, errInjected) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Open with a failing directory sync: %v, want %v", err, errInjected)
	}
	fail.Store(false)
	l, err := framelog.Open(ctx, db, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	testutil.Exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	if l.Next() == 0 {
		t.Fatal("nothing logged")
	}
}

// Compaction renames a new log into place. Until that rename is durable
// no commit may be acknowledged (a crash could bring the old log back
// without it): while the directory sync fails, commits fail; once it
// works they succeed, and the log still replays to the database.
func TestDirSyncFailureAfterCompactionFailsCommits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fail := failingDirSync(t)
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "p.db"), CheckpointPages: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := framelog.Open(ctx, db, framelog.Options{CompactFrames: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	testutil.Exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")

	fail.Store(true)
	n := 0
	for ; l.Stats().Compactions == 0; n++ {
		if n == 1000 {
			t.Fatal("no compaction")
		}
		// The commit that compacts succeeds: its frames were synced in
		// the old log, which the snapshot also holds.
		if err := insert(db, n); err != nil {
			t.Fatalf("insert %d: %v", n, err)
		}
	}
	for range 2 {
		err := insert(db, n)
		n++
		if !errors.Is(err, errInjected) || !errors.Is(err, sqlite.ErrHook) {
			t.Fatalf("commit after an unsynced compaction: %v, want %v", err, errInjected)
		}
	}

	fail.Store(false)
	next := l.Next()
	if err := insert(db, n); err != nil {
		t.Fatalf("commit once the directory syncs: %v", err)
	}
	if l.Next() <= next {
		t.Fatalf("log did not move: %d → %d", next, l.Next())
	}
	// The failed commits are in the database (SQLite committed them)
	// and, captured from the WAL by the next commit, in the log.
	fresh := openDB(t, filepath.Join(dir, "f.db"), true)
	bootstrap(t, l, fresh)
	sameDB(t, db.Path(), fresh.Path())
}
