package framelog_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/internal/testutil"
)

// The log names the checksum of any frame it holds, of its start's
// predecessor, and of its end; a compaction's snapshot and an adopted
// log without a tail carry it on.
func TestSumsForRejoin(t *testing.T) {
	ctx := context.Background()
	id, next, r, _, recs := promotableRecs(t)
	last := binary.LittleEndian.Uint64(recs[len(recs)-framelog.FrameSize+8:])

	db := openDB(t, r, false)
	l, err := framelog.Open(ctx, db, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next, Sum: last, SumKnown: true}, CompactFrames: 8})
	if err != nil {
		t.Fatal(err)
	}
	if n, sum := l.End(); n != next || sum != last {
		t.Fatalf("adopted log ends at %d sum %x, want %d %x", n, sum, next, last)
	}
	if sum, ok, err := l.SumBefore(next); err != nil || !ok || sum != last {
		t.Fatalf("SumBefore(start) = %x %v %v", sum, ok, err)
	}
	if _, ok, _ := l.SumBefore(5); ok {
		t.Fatal("a frame before the log's start was named")
	}
	for i := range 30 {
		testutil.Exec(t, db, "INSERT INTO t (b) VALUES (?)", i)
	}
	end, endSum := l.End()
	if sum, ok, err := l.SumBefore(end); err != nil || !ok || sum != endSum {
		t.Fatalf("SumBefore(end) = %x %v %v, want %x", sum, ok, err, endSum)
	}
	if _, ok, _ := l.SumBefore(end + 1); ok {
		t.Fatal("a frame past the end was named")
	}
	snap, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum, ok := snap.Sum(); !ok || snap.End()+1 != l.Start() {
		t.Fatalf("snapshot sum %x %v, end %d, log start %d", sum, ok, snap.End(), l.Start())
	} else if seed, ok, _ := l.SumBefore(l.Start()); !ok || seed != sum {
		t.Fatalf("log seed %x %v, snapshot sum %x", seed, ok, sum)
	}
	snap.Close()
	if err := db.WithWriter(ctx, func() error { l.Detach(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Final: the end as a primary that stopped left it.
	var gotID string
	var gotNext, gotSum uint64
	err = framelog.Final(ctx, db, framelog.Options{}, func(l *framelog.Log) error {
		gotID = l.ID()
		gotNext, gotSum = l.End()
		return nil
	})
	if err != nil || gotID != id || gotNext != end || gotSum != endSum {
		t.Fatalf("Final = %s %d %x %v, want %s %d %x", gotID, gotNext, gotSum, err, id, end, endSum)
	}
	// Its hooks are off (a commit does not fail on the closed log), and
	// what the WAL holds that the log lacks is logged by the next Final.
	testutil.Exec(t, db, "INSERT INTO t (b) VALUES ('after')")
	var n2 uint64
	err = framelog.Final(ctx, db, framelog.Options{}, func(l *framelog.Log) error { n2 = l.Next(); return nil })
	if err != nil || n2 <= end {
		t.Fatalf("Final after an unlogged commit: next %d (was %d), %v", n2, end, err)
	}
}

// A log adopted with its tail does not know the checksum before the
// tail's first frame.
func TestAdoptedTailSeedUnknown(t *testing.T) {
	ctx := context.Background()
	id, next, r, _, recs := promotableRecs(t)
	tail := recs[len(recs)-3*framelog.FrameSize:]
	db := openDB(t, r, false)
	l, err := framelog.Open(ctx, db, framelog.Options{Adopt: &framelog.Adopt{ID: id, Next: next, Tail: tail, Sum: 1, SumKnown: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Start() == next {
		t.Skip("the tail was not kept (does not start a transaction)")
	}
	if _, ok, _ := l.SumBefore(l.Start()); ok {
		t.Fatal("the seed before an adopted tail was named")
	}
	want := binary.LittleEndian.Uint64(recs[len(recs)-framelog.FrameSize+8:])
	if sum, ok, _ := l.SumBefore(next); !ok || sum != want {
		t.Fatalf("SumBefore(next) = %x %v, want the tail's last %x", sum, ok, want)
	}
}
