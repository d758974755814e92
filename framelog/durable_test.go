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
	// The compaction syncs the directory after renaming the snapshot,
	// then after renaming the log: only the second fails.
	var fail atomic.Bool
	var calls atomic.Int64
	var real func(string) error
	real, restore := framelog.SetSyncDir(func(d string) error {
		if fail.Load() && calls.Add(1) > 1 {
			return errInjected
		}
		return real(d)
	})
	t.Cleanup(restore)
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

// failingSyncOf makes the log's syncs of directory dir fail while fail
// is set; other directories sync.
func failingSyncOf(t *testing.T, dir string) *atomic.Bool {
	var fail atomic.Bool
	var real func(string) error
	real, restore := framelog.SetSyncDir(func(d string) error {
		if fail.Load() && filepath.Clean(d) == filepath.Clean(dir) {
			return errInjected
		}
		return real(d)
	})
	t.Cleanup(restore)
	return &fail
}

// execErr runs q on the writer and returns its error.
func execErr(db *sqlite.DB, q string) error {
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	_, err = w.ExecContext(ctx, q)
	return err
}

// The log's directory is created by Open: its entry in the parent must
// be durable too before a commit is acknowledged (a power cut could
// otherwise take the log away, with the commits the WAL had not synced).
// A failed sync of the parent fails Open; a log found by a later Open
// whose names may still not be durable fails commits until they are.
func TestParentDirSyncFailureFailsOpenAndCommits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fail := failingSyncOf(t, dir)
	db := openDB(t, filepath.Join(dir, "p.db"), false)
	fail.Store(true)
	if l, err := framelog.Open(ctx, db, framelog.Options{}); !errors.Is(err, errInjected) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Open with a failing sync of the parent: %v, want %v", err, errInjected)
	}
	// The log file is there now (renamed before the sync failed): this
	// Open finds it, and acknowledges nothing until its names are synced.
	l, err := framelog.Open(ctx, db, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	next := l.Next()
	// SQLite commits the table (the hook runs after), so the second
	// commit has a row to insert.
	for i, q := range []string{
		"CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)",
		"INSERT INTO t (b) VALUES ('x')",
	} {
		err := execErr(db, q)
		if !errors.Is(err, errInjected) || !errors.Is(err, sqlite.ErrHook) {
			t.Fatalf("commit %d while the log's directory is not synced in its parent: %v, want %v", i, err, errInjected)
		}
		if l.Next() != next {
			t.Fatalf("log moved while its name may not be durable: %d → %d", next, l.Next())
		}
	}
	fail.Store(false)
	if err := insert(db, 0); err != nil {
		t.Fatalf("commit once the parent syncs: %v", err)
	}
	if l.Next() <= next {
		t.Fatalf("log did not move: %d → %d", next, l.Next())
	}
	fresh := openDB(t, filepath.Join(dir, "f.db"), true)
	bootstrap(t, l, fresh)
	sameDB(t, db.Path(), fresh.Path())
}

// A compaction syncs the new snapshot's name before it renames the new
// log (which starts after it) into place: when that sync fails the
// compaction fails before the swap, the old log stays, and commits go on.
func TestSnapshotDirSyncFailureFailsCompaction(t *testing.T) {
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
	start := l.Start()
	for n := range 300 {
		if err := insert(db, n); err != nil {
			t.Fatalf("insert %d: %v", n, err)
		}
	}
	if c := l.Stats().Compactions; c != 0 || l.Start() != start {
		t.Fatalf("compacted %d times (log from %d, was %d) while the snapshot could not be synced", c, l.Start(), start)
	}
	fail.Store(false)
	for n := 300; l.Stats().Compactions == 0; n++ {
		if n == 1300 {
			t.Fatal("no compaction once the directory syncs")
		}
		if err := insert(db, n); err != nil {
			t.Fatalf("insert %d: %v", n, err)
		}
	}
	fresh := openDB(t, filepath.Join(dir, "f.db"), true)
	bootstrap(t, l, fresh)
	sameDB(t, db.Path(), fresh.Path())
}
