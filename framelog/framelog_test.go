package framelog_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

func openDB(t testing.TB, path string, readOnly bool) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, ReadOnly: readOnly})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// replay applies records to a replica one transaction at a time, the way
// a replica does, checking numbering and the checksum chain.
func replay(t *testing.T, replica *sqlite.DB, recs []byte, wantFrom uint64) uint64 {
	t.Helper()
	var pages []sqlite.Page
	next := wantFrom
	for off := 0; off < len(recs); off += framelog.FrameSize {
		r := recs[off : off+framelog.FrameSize]
		if no := binary.LittleEndian.Uint64(r); no != next {
			t.Fatalf("frame %d where %d was expected", no, next)
		}
		next++
		pgno, size := binary.LittleEndian.Uint32(r[16:]), binary.LittleEndian.Uint32(r[20:])
		pages = upsert(pages, sqlite.Page{No: pgno, Data: r[24:]})
		if size != 0 {
			if err := replica.ApplyPages(context.Background(), trim(pages, size), size); err != nil {
				t.Fatal(err)
			}
			pages = nil
		}
	}
	if pages != nil {
		t.Fatal("records end inside a transaction")
	}
	return next
}

func upsert(pages []sqlite.Page, p sqlite.Page) []sqlite.Page {
	for i := range pages {
		if pages[i].No == p.No {
			pages[i] = p
			return pages
		}
	}
	pages = append(pages, p)
	for i := len(pages) - 1; i > 0 && pages[i].No < pages[i-1].No; i-- {
		pages[i], pages[i-1] = pages[i-1], pages[i]
	}
	return pages
}

func trim(pages []sqlite.Page, size uint32) []sqlite.Page {
	out := pages[:0]
	for _, p := range pages {
		if p.No <= size {
			out = append(out, p)
		}
	}
	return out
}

func sameDB(t *testing.T, a, b string) {
	t.Helper()
	ha, na, err := sqlite.Hash(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	hb, nb, err := sqlite.Hash(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb || na != nb {
		t.Fatalf("databases differ: %s %s (%d pages) vs %s (%d pages)", a, ha, na, hb, nb)
	}
}

func TestLogReplaysToAnIdenticalDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "p.db"), false)
	testutil.Exec(t, db, "CREATE TABLE before_log (a)") // in the database before the log exists
	l, err := framelog.Open(ctx, db, framelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first := l.Next()
	if first == 0 {
		t.Fatal("the log does not start with the existing database")
	}
	testutil.Exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	for i := range 300 {
		testutil.Exec(t, db, "INSERT INTO t (b) VALUES (?)", strings.Repeat("x", i*10))
	}
	// A multi-statement transaction is one log transaction.
	w, _ := db.AcquireWriter(ctx)
	_ = w.Begin(ctx)
	for i := range 50 {
		_, _ = w.ExecContext(ctx, "UPDATE t SET b = ? WHERE a = ?", "y", i)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Release(ctx)
	testutil.Exec(t, db, "DELETE FROM t WHERE a % 3 = 0")

	recs, err := l.ReadFrames(nil, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(recs)/framelog.FrameSize) != l.Next() {
		t.Fatalf("read %d frames, Next = %d", len(recs)/framelog.FrameSize, l.Next())
	}
	replica := openDB(t, filepath.Join(dir, "r.db"), true)
	if next := replay(t, replica, recs, 0); next != l.Next() {
		t.Fatalf("replayed to %d, log at %d", next, l.Next())
	}
	sameDB(t, db.Path(), replica.Path())

	// Partial reads end at transaction boundaries.
	part, err := l.ReadFrames(nil, first, 1)
	if err != nil {
		t.Fatal(err)
	}
	last := part[len(part)-framelog.FrameSize:]
	if binary.LittleEndian.Uint32(last[20:]) == 0 {
		t.Fatal("ReadFrames stopped inside a transaction")
	}
	if got, _ := l.ReadFrames(nil, l.Next(), 10); len(got) != 0 {
		t.Fatal("frames past the end")
	}
}

func TestLogSurvivesCheckpointsAndCompaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "p.db"), CheckpointPages: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := framelog.Open(ctx, db, framelog.Options{CompactFrames: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	testutil.Exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	replica := openDB(t, filepath.Join(dir, "r.db"), true)
	pos := replay(t, replica, must(l.ReadFrames(nil, 0, 1<<30)), 0)
	for i := range 400 {
		testutil.Exec(t, db, "INSERT INTO t (b) VALUES (?)", strings.Repeat("z", 500+i))
		if i == 100 {
			// A replica that keeps up streams across compactions.
			pos = replay(t, replica, must(l.ReadFrames(nil, pos, 1<<30)), pos)
		}
	}
	if l.Stats().Compactions == 0 || l.Start() == 0 {
		t.Fatalf("no compaction: %+v start=%d", l.Stats(), l.Start())
	}
	if _, err := l.ReadFrames(nil, 0, 10); !errors.Is(err, ephpm.ErrNeedSnapshot) {
		t.Fatalf("old frames: %v, want ErrNeedSnapshot", err)
	}
	// A fresh replica: snapshot, then the tail.
	fresh := openDB(t, filepath.Join(dir, "f.db"), true)
	bootstrap(t, l, fresh)
	sameDB(t, db.Path(), fresh.Path())
}

// bootstrap brings an empty replica to the log's end: from frame 0, or
// from the snapshot and the tail after it.
func bootstrap(t *testing.T, l *framelog.Log, replica *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	if l.Start() == 0 {
		replay(t, replica, must(l.ReadFrames(nil, 0, 1<<30)), 0)
		return
	}
	snap, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var pages []sqlite.Page
	for no := uint32(1); no <= snap.Pages(); no++ {
		buf := make([]byte, framelog.PageSize)
		if err := snap.ReadPage(no, buf); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, sqlite.Page{No: no, Data: buf})
	}
	if err := replica.ApplyPages(ctx, pages, snap.Pages()); err != nil {
		t.Fatal(err)
	}
	if snap.ID() != l.ID() {
		t.Fatal("snapshot of another log")
	}
	replay(t, replica, must(l.ReadFrames(nil, snap.End()+1, 1<<30)), snap.End()+1)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestKill9LosesNoAcknowledgedWrite runs a writer in a child process,
// kills it with SIGKILL in the middle of its load, and checks that every
// insert it acknowledged is in the database, and that the log, reopened,
// replays to exactly that database.
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	if os.Getenv("FRAMELOG_CHILD") != "" {
		child()
		return
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNoAcknowledgedWrite$")
		cmd.Env = append(os.Environ(), "FRAMELOG_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acked := 0
		deadline := time.Now().Add(20 * time.Second)
		for sc.Scan() && time.Now().Before(deadline) {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack ")); err == nil {
				acked = n
				if acked >= 150*(round+1)+round*37 {
					break
				}
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if acked == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		// Simulate what a power cut does to a WAL that was not synced
		// (the log was): round 1 loses the WAL's tail, round 2 all of it.
		wal := filepath.Join(dir, "p.db-wal")
		switch round {
		case 1:
			if st, err := os.Stat(wal); err == nil && st.Size() > 32+2*4120 {
				_ = os.Truncate(wal, 32+(st.Size()-32)/4120/2*4120)
			}
		case 2:
			_ = os.Remove(wal)
			_ = os.Remove(filepath.Join(dir, "p.db-shm"))
		}

		ctx := context.Background()
		db := openDB(t, filepath.Join(dir, "p.db"), false)
		l, err := framelog.Open(ctx, db, framelog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id <= ?", acked).Scan(&n); err != nil || n != acked {
			t.Fatalf("round %d: %d of %d acknowledged rows present (%v)", round, n, acked, err)
		}
		t.Logf("round %d: log start %d next %d", round, l.Start(), l.Next())
		replica := openDB(t, filepath.Join(t.TempDir(), "r.db"), true)
		bootstrap(t, l, replica)
		sameDB(t, db.Path(), replica.Path())
		l.Close()
		db.Close()
		t.Logf("round %d: %d acknowledged, log at %d", round, acked, l.Next())
	}
}

func child() {
	dir := os.Getenv("FRAMELOG_CHILD")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "p.db"), CheckpointPages: 50})
	if err != nil {
		panic(err)
	}
	l, err := framelog.Open(ctx, db, framelog.Options{CompactFrames: 300})
	if err != nil {
		panic(err)
	}
	_ = l
	w, _ := db.AcquireWriter(ctx)
	_, _ = w.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
	w.Release(ctx)
	for {
		w, err := db.AcquireWriter(ctx)
		if err != nil {
			panic(err)
		}
		res, err := w.ExecContext(ctx, "INSERT INTO t (v) VALUES (?)", strings.Repeat("v", 700))
		w.Release(ctx)
		if err != nil {
			panic(err)
		}
		id, _ := res.LastInsertId()
		fmt.Printf("ack %d\n", id)
	}
}

func TestLargeDatabaseStartsFromASnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "p.db"), false)
	testutil.Exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	for i := range 200 {
		testutil.Exec(t, db, "INSERT INTO t (b) VALUES (?)", strings.Repeat("x", 1000+i))
	}
	l, err := framelog.Open(ctx, db, framelog.Options{BaseFrames: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Start() != 1 || l.Next() != 1 {
		t.Fatalf("start %d next %d, want a log after a snapshot standing for frame 0", l.Start(), l.Next())
	}
	if _, err := l.ReadFrames(nil, 0, 10); !errors.Is(err, ephpm.ErrNeedSnapshot) {
		t.Fatalf("frame 0: %v", err)
	}
	testutil.Exec(t, db, "INSERT INTO t (b) VALUES ('after')")
	replica := openDB(t, filepath.Join(dir, "r.db"), true)
	bootstrap(t, l, replica)
	sameDB(t, db.Path(), replica.Path())

	// Reopened, it is the same log.
	id := l.ID()
	l.Close()
	l2, err := framelog.Open(ctx, db, framelog.Options{BaseFrames: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.ID() != id || l2.Start() != 1 {
		t.Fatalf("reopened: id %s start %d", l2.ID(), l2.Start())
	}
}
