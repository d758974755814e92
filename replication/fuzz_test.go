package replication_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

func record(no uint64, pgno, size uint32) []byte {
	r := make([]byte, framelog.FrameSize)
	binary.LittleEndian.PutUint64(r, no)
	binary.LittleEndian.PutUint32(r[16:], pgno)
	binary.LittleEndian.PutUint32(r[20:], size)
	return r
}

// FuzzStream feeds arbitrary bytes to the replica's stream reader and
// frame parser: they must reject garbage with an error, never panic or
// accept frames out of order.
func FuzzStream(f *testing.F) {
	tx := append(record(7, 1, 0), record(8, 2, 2)...)
	msg := append([]byte{'F', 0, 0, 0, 0}, make([]byte, 8)...)
	msg = append(msg, tx...)
	binary.BigEndian.PutUint32(msg[1:], uint32(8+len(tx)))
	f.Add(msg, uint64(7))
	f.Add([]byte("H\x00\x00\x00\x02{}"), uint64(0))
	f.Add([]byte("P\x00\x00\x00\x10aaaaaaaabbbbbbbb"), uint64(0))
	f.Add([]byte("Z\x00\x00\x00\x00"), uint64(0))
	f.Add([]byte("F\xff\xff\xff\xff"), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, want uint64) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			typ, payload, err := replication.ReadMsg(r)
			if err != nil {
				return
			}
			if typ == 'F' && len(payload) >= 8 {
				next, err := replication.ParseFrames(payload[8:], want)
				if err == nil && next != want+uint64((len(payload)-8)/framelog.FrameSize) {
					t.Fatalf("accepted frames but next = %d from %d", next, want)
				}
			}
		}
	})
}

// FuzzFrameCookie: any ephpm_frame value a client sends is refused unless
// this cluster issued it for this site and it has not expired; a genuine
// one reads back as issued.
func FuzzFrameCookie(f *testing.F) {
	pool := sqlite.NewPool(sqlite.PoolConfig{})
	defer pool.Close()
	m, err := replication.New(replication.Config{Node: "n", Token: "fuzz-cluster-token-0123456789", Pool: pool})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	now := time.Unix(1_800_000_000, 0)
	f.Add(replication.FrameCookie(m, "s.com", 42, now.Add(time.Minute)), uint64(42))
	f.Add("999999999", uint64(0))
	f.Add("1.2.AAAAAAAAAAAAAAAA", uint64(1))
	f.Add("..", uint64(0))
	f.Fuzz(func(t *testing.T, v string, frame uint64) {
		if got, ok := replication.ParseFrameCookie(m, "s.com", v, now); ok && !strings.HasPrefix(v, strconv.FormatUint(got, 36)+".") {
			t.Fatalf("%q accepted as frame %d", v, got)
		}
		if _, ok := replication.ParseFrameCookie(m, "other.com", v, now); ok {
			if _, ok2 := replication.ParseFrameCookie(m, "s.com", v, now); ok2 {
				t.Fatalf("%q accepted for two sites", v)
			}
		}
		c := replication.FrameCookie(m, "s.com", frame, now.Add(time.Minute))
		if got, ok := replication.ParseFrameCookie(m, "s.com", c, now); !ok || got != frame {
			t.Fatalf("genuine cookie %q: %d %v", c, got, ok)
		}
		if _, ok := replication.ParseFrameCookie(m, "s.com", c, now.Add(2*time.Minute)); ok {
			t.Fatalf("expired cookie %q accepted", c)
		}
		if _, ok := replication.ParseFrameCookie(m, "other.com", c, now); ok {
			t.Fatalf("cookie of s.com accepted for other.com")
		}
	})
}

// FuzzRepair feeds arbitrary bytes to the repair exchange's reader and
// parsers: garbage is an error, never a panic, and what they accept
// stays in bounds (page numbers in 1..pages, ascending).
func FuzzRepair(f *testing.F) {
	le := binary.LittleEndian
	blocks := le.AppendUint32(nil, 65)
	blocks = append(blocks, make([]byte, 32)...)
	diff := le.AppendUint16(le.AppendUint32(nil, 1), 2)
	diff = append(diff, make([]byte, 16)...)
	want := le.AppendUint32(le.AppendUint32(nil, 1), 70)
	pages := append(le.AppendUint32(nil, 3), make([]byte, 4096)...)
	for _, p := range [][]byte{blocks, diff, want, pages, nil, {1, 2, 3}} {
		f.Add(p, uint32(100))
	}
	f.Add([]byte("K\x00\x00\x00\x04\x00\x00\x00\x00"), uint32(0))
	f.Fuzz(func(t *testing.T, p []byte, n uint32) {
		r := bufio.NewReader(bytes.NewReader(p))
		for {
			if _, _, err := replication.ReadRepairMsg(r); err != nil {
				break
			}
		}
		if pages, nb, err := replication.ParseRepairBlocks(p); err == nil {
			if uint64(nb) != (uint64(pages)+replication.RepairBlockPages-1)/replication.RepairBlockPages {
				t.Fatalf("%d blocks for %d pages", nb, pages)
			}
		}
		if nos, err := replication.ParseRepairDiff(p, n); err == nil {
			for i, no := range nos {
				if no == 0 || no > n || i > 0 && no <= nos[i-1] {
					t.Fatalf("diff names page %d of %d (%v)", no, n, nos)
				}
			}
		}
		if nos, err := replication.ParseRepairWant(p, n); err == nil {
			for i, no := range nos {
				if no == 0 || no > n || i > 0 && no <= nos[i-1] {
					t.Fatalf("want names page %d of %d", no, n)
				}
			}
		}
		if c, err := replication.ParseRepairPages(p); err == nil && c*(4+4096) != len(p) {
			t.Fatalf("%d pages in %d bytes", c, len(p))
		}
	})
}
