package framelog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

// promotable sets up a primary with a log and two replicas that replayed
// it to its end; it returns the log's ID and end and the replicas' paths.
func promotable(t *testing.T) (id string, next uint64, r, c string) {
	t.Helper()
	id, next, r, c, _ = promotableRecs(t)
	return id, next, r, c
}

// promotableRecs is promotable, and the log's records.
func promotableRecs(t *testing.T) (id string, next uint64, r, c string, recs []byte) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	p := openDB(t, filepath.Join(dir, "p.db"), false)
	l, err := framelog.Open(ctx, p, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	testutil.Exec(t, p, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	for i := range 20 {
		testutil.Exec(t, p, "INSERT INTO t (b) VALUES (?)", i)
	}
	recs, err = l.ReadFrames(nil, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	r, c = filepath.Join(dir, "r.db"), filepath.Join(dir, "c.db")
	for _, path := range []string{r, c} {
		db, err := sqlite.Open(ctx, sqlite.Config{Path: path, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		replay(t, db, recs, 0)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return l.ID(), l.Next(), r, c, recs
}

func TestAdoptContinuesTheLog(t *testing.T) {
	ctx := context.Background()
	id, next, r, c := promotable(t)
	db := openDB(t, r, false)
	l, err := framelog.Open(ctx, db, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.ID() != id || l.Start() != next || l.Next() != next {
		t.Fatalf("adopted log: id %s start %d next %d, want %s, %d, %d", l.ID(), l.Start(), l.Next(), id, next, next)
	}
	snap, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.ID() != id || snap.End() != next-1 {
		t.Errorf("snapshot: id %s end %d, want %s, %d", snap.ID(), snap.End(), id, next-1)
	}
	snap.Close()
	testutil.Exec(t, db, "INSERT INTO t (b) VALUES ('after the move')")
	testutil.Exec(t, db, "UPDATE t SET b = 'x' WHERE a < 5")
	recs, err := l.ReadFrames(nil, next, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// The other replica follows the new primary from where it was.
	cdb := openDB(t, c, true)
	if got := replay(t, cdb, recs, next); got != l.Next() {
		t.Fatalf("replayed to %d, log at %d", got, l.Next())
	}
	if _, err := l.ReadFrames(nil, next-1, 10); !errors.Is(err, ephpm.ErrNeedSnapshot) {
		t.Errorf("frames before the adoption: %v, want ErrNeedSnapshot", err)
	}
	if _, _, _, err := db.Checkpoint(ctx, "TRUNCATE"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := cdb.Checkpoint(ctx, "TRUNCATE"); err != nil {
		t.Fatal(err)
	}
	sameDB(t, r, c)
}

// A node that was primary before (its own log in the directory, at
// another position) must not reuse it when it becomes primary again.
func TestAdoptReplacesAnOlderLog(t *testing.T) {
	ctx := context.Background()
	id, next, r, _ := promotable(t)
	db := openDB(t, r, false)
	old, err := framelog.Open(ctx, db, framelog.Options{}) // this node's era as primary
	if err != nil {
		t.Fatal(err)
	}
	testutil.Exec(t, db, "INSERT INTO t (b) VALUES ('era 1')")
	oldID := old.ID()
	if err := db.WithWriter(ctx, func() error { old.Detach(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := framelog.Open(ctx, db, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next + 7}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.ID() == oldID || l.ID() != id || l.Start() != next+7 {
		t.Fatalf("adopted: id %s start %d; want %s from %d (old log %s)", l.ID(), l.Start(), id, next+7, oldID)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Opened again as it is: the adopted log goes on.
	if err := db.WithWriter(ctx, func() error { l.Detach(); return nil }); err != nil {
		t.Fatal(err)
	}
	again, err := framelog.Open(ctx, db, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.ID() != id || again.Next() != next+7 {
		t.Fatalf("reopened: id %s next %d, want %s, %d", again.ID(), again.Next(), id, next+7)
	}
}

// A crash between the steps of an adoption (each state built by hand,
// as the steps leave it) gives a log that either continues correctly or
// is refused with ErrInterrupted until the adoption runs again.
func TestAdoptInterrupted(t *testing.T) {
	cases := []struct {
		name string
		// after prepares the state on disk, given the log's directory
		// after a finished adoption.
		after   func(t *testing.T, dir string)
		refused bool
	}{
		{"built, not swapped in", func(t *testing.T, dir string) {
			mustCopyDir(t, dir, dir+".adopt")
		}, true},
		{"old moved away, new not in place", func(t *testing.T, dir string) {
			if err := os.Rename(dir, dir+".adopt"); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir+".old", 0o700); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"swapped, old not removed", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir+".old", 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			id, next, r, _ := promotable(t)
			db := openDB(t, r, false)
			adopt := &framelog.Adopt{ID: id, Next: next}
			l, err := framelog.Open(ctx, db, framelog.Options{Adopt: adopt})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.WithWriter(ctx, func() error { l.Detach(); return nil }); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			dir := framelog.Dir(r)
			tc.after(t, dir)
			l, err = framelog.Open(ctx, db, framelog.Options{})
			if tc.refused {
				if !errors.Is(err, framelog.ErrInterrupted) {
					t.Fatalf("Open: %v, want ErrInterrupted", err)
				}
				l, err = framelog.Open(ctx, db, framelog.Options{Adopt: adopt})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.ID() != id || l.Next() != next {
				t.Fatalf("log: %s at %d, want %s at %d", l.ID(), l.Next(), id, next)
			}
			for _, d := range []string{dir + ".adopt", dir + ".old"} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", d, err)
				}
			}
		})
	}
}

// A failed sync while the new log is built leaves the old directory in
// place and the adoption refused until it runs again.
func TestAdoptSyncFailure(t *testing.T) {
	ctx := context.Background()
	id, next, r, _ := promotable(t)
	db := openDB(t, r, false)
	_, restore := framelog.SetSyncDir(func(string) error { return errors.New("injected") })
	_, err := framelog.Open(ctx, db, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next}})
	restore()
	if err == nil {
		t.Fatal("adopt with a failing directory sync succeeded")
	}
	if _, err := framelog.Open(ctx, db, framelog.Options{}); !errors.Is(err, framelog.ErrInterrupted) {
		t.Fatalf("Open after a failed adoption: %v, want ErrInterrupted", err)
	}
	l, err := framelog.Open(ctx, db, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next}})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func mustCopyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Mkdir(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A promoted replica keeps the records it applied last (Adopt.Tail): a
// replica behind the adoption point continues from the log, no
// snapshot. A tail that does not end at Next is left out.
func TestAdoptKeepsTheTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := openDB(t, filepath.Join(dir, "p.db"), false)
	pl, err := framelog.Open(ctx, p, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	testutil.Exec(t, p, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	behind := pl.Next() // where the lagging replica stops
	for i := range 20 {
		testutil.Exec(t, p, "INSERT INTO t (b) VALUES (?)", i)
	}
	id, next := pl.ID(), pl.Next()
	recs, err := pl.ReadFrames(nil, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	r, c := filepath.Join(dir, "r.db"), filepath.Join(dir, "c.db")
	for path, upTo := range map[string]uint64{r: next, c: behind} {
		db, err := sqlite.Open(ctx, sqlite.Config{Path: path, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		replay(t, db, recs[:upTo*framelog.FrameSize], 0)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rdb := openDB(t, r, false)
	bad := append([]byte(nil), recs[behind*framelog.FrameSize:(next-1)*framelog.FrameSize]...) // ends a frame short
	l, err := framelog.Open(ctx, rdb, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next, Tail: bad}})
	if err != nil {
		t.Fatal(err)
	}
	if l.Start() != next {
		t.Fatalf("a tail that does not reach Next: the log starts at %d, want %d", l.Start(), next)
	}
	if err := rdb.WithWriter(ctx, func() error { l.Detach(); return nil }); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, err = framelog.Open(ctx, rdb, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next, Tail: recs[behind*framelog.FrameSize:]}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Start() != behind || l.Next() != next {
		t.Fatalf("adopted with its tail: start %d next %d, want %d, %d", l.Start(), l.Next(), behind, next)
	}
	snap, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.End() != next-1 {
		t.Errorf("snapshot end %d, want %d (it stands for the state at the adoption)", snap.End(), next-1)
	}
	snap.Close()
	testutil.Exec(t, rdb, "INSERT INTO t (b) VALUES ('after the move')")
	// Opened again as it is (a restart): still valid, still from behind.
	if err := rdb.WithWriter(ctx, func() error { l.Detach(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = framelog.Open(ctx, rdb, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	testutil.Exec(t, rdb, "UPDATE t SET b = 'x' WHERE a < 5")
	if l.Start() != behind {
		t.Fatalf("reopened: start %d, want %d", l.Start(), behind)
	}
	more, err := l.ReadFrames(nil, behind, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	cdb := openDB(t, c, true)
	if got := replay(t, cdb, more, behind); got != l.Next() {
		t.Fatalf("replayed to %d, log at %d", got, l.Next())
	}
	if _, _, _, err := rdb.Checkpoint(ctx, "TRUNCATE"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := cdb.Checkpoint(ctx, "TRUNCATE"); err != nil {
		t.Fatal(err)
	}
	sameDB(t, r, c)
}
