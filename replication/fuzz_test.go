package replication_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/replication"
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
