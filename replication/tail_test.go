package replication_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/replication"
)

const tailID = "00000000-0000-4000-8000-000000000001"

// frames makes records from..to-1 in the log's layout, in transactions
// of txLen frames (the last of each has a size), each page filled with
// its frame number.
func frames(from, to uint64, txLen int) []byte {
	var out []byte
	for no := from; no < to; no++ {
		r := make([]byte, framelog.FrameSize)
		binary.LittleEndian.PutUint64(r, no)
		binary.LittleEndian.PutUint64(r[8:], no*7)
		binary.LittleEndian.PutUint32(r[16:], uint32(no%5+1))
		if (no+1)%uint64(txLen) == 0 {
			binary.LittleEndian.PutUint32(r[20:], 10)
		}
		for i := 24; i < len(r); i += 8 {
			binary.LittleEndian.PutUint64(r[i:], no)
		}
		out = append(out, r...)
	}
	return out
}

func recs(b []byte, from, to uint64) []byte {
	return b[from*framelog.FrameSize : to*framelog.FrameSize]
}

// What a crash can leave of the tail (it is not synced): a torn or
// missing last record, a damaged one, another log's, a tail that ends
// before the position or past it. Whatever is read back is exactly the
// frames before the position, or nothing: never a wrong frame.
func TestTailAfterACrash(t *testing.T) {
	all := frames(0, 40, 2) // transactions end at frames 1, 3, 5, ...
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		next   uint64 // the position file's
		want   []byte // what a promotion may adopt
	}{
		{"whole", nil, 40, recs(all, 10, 40)},
		{"position inside", nil, 30, recs(all, 10, 30)},
		{"position before its start", nil, 8, nil},
		{"position past its end", nil, 42, nil},
		{"position mid-transaction", nil, 31, nil},
		{"torn last record", func(p string) error { return truncBy(p, 100) }, 40, nil},
		{"torn, position before it", func(p string) error { return truncBy(p, 100) }, 38, recs(all, 10, 38)},
		{"last record missing", func(p string) error { return truncBy(p, framelog.FrameSize+4) }, 40, nil},
		{"a page damaged", func(p string) error { return flip(p, 64+int64(20*(framelog.FrameSize+4))+3000) }, 40, nil},
		{"damaged, position before it", func(p string) error { return flip(p, 64+int64(20*(framelog.FrameSize+4))+3000) }, 30, recs(all, 10, 30)},
		{"a frame header damaged", func(p string) error { return flip(p, 64+int64(25*(framelog.FrameSize+4))+17) }, 40, nil},
		{"header torn", func(p string) error { return flip(p, 50) }, 40, nil},
		{"empty file", func(p string) error { return os.Truncate(p, 0) }, 40, nil},
		{"no file", os.Remove, 40, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "s.db")
			if err := replication.WriteTail(db, tailID, 10, recs(all, 10, 40), 1000); err != nil {
				t.Fatal(err)
			}
			if tc.damage != nil {
				if err := tc.damage(db + "-replica-tail"); err != nil {
					t.Fatal(err)
				}
			}
			got, err := replication.ReadTail(db, tailID, tc.next)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d frames, want %d", len(got)/framelog.FrameSize, len(tc.want)/framelog.FrameSize)
			}
			if other, _ := replication.ReadTail(db, "00000000-0000-4000-8000-000000000002", tc.next); other != nil {
				t.Fatal("another log's tail was read")
			}
			// A replica opening at the position keeps what checks out and
			// goes on from there.
			if err := replication.AddTail(db, tailID, tc.next, tc.next, frames(tc.next, tc.next+2, 2), 1000); err != nil {
				t.Fatal(err)
			}
			got, err = replication.ReadTail(db, tailID, tc.next+2)
			if err != nil {
				t.Fatal(err)
			}
			want := frames(tc.next, tc.next+2, 2)
			if tc.want != nil {
				want = append(append([]byte(nil), tc.want...), want...)
			}
			if tc.next%2 == 1 {
				want = nil // the added frames start mid-transaction: not whole
			}
			if !bytes.Equal(got, want) && !(tc.next%2 == 1 && got == nil) {
				t.Fatalf("after adding: %d frames, want %d", len(got)/framelog.FrameSize, len(want)/framelog.FrameSize)
			}
		})
	}
}

// The tail stays bounded: past twice its bound it keeps about the bound,
// from a transaction's first frame; a batch sent again replaces what
// followed its start.
func TestTailBounded(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	all := frames(0, 200, 3)
	next := uint64(0)
	for next < 198 {
		if err := replication.AddTail(db, tailID, next, next, recs(all, next, next+6), 20); err != nil {
			t.Fatal(err)
		}
		next += 6
		// A batch applied again after a failure: the same frames.
		if err := replication.AddTail(db, tailID, next, next-3, recs(all, next-3, next), 20); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(db + "-replica-tail")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Size() / (framelog.FrameSize + 4); n >= 40 {
		t.Fatalf("%d records kept, bound 20", n)
	}
	got, err := replication.ReadTail(db, tailID, next)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(len(got) / framelog.FrameSize)
	if n < 20 || (next-n)%3 != 0 || !bytes.Equal(got, recs(all, next-n, next)) {
		t.Fatalf("kept %d frames from %d", n, next-n)
	}
}

func truncBy(path string, n int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, st.Size()-n)
}

func flip(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	return err
}
