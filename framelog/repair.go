package framelog

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"

	"github.com/ephpm/ephpm/sqlite"
)

// walLost reports whether frames the log captured from the WAL's current
// generation may be missing from the database: the WAL is gone, empty or
// damaged, or its checksum chain ends before the cursor — what a power
// cut does to a WAL that SQLite (synchronous=NORMAL) had not synced,
// while the log had been. A valid WAL of a newer generation loses
// nothing: SQLite starts one only after a complete checkpoint.
func (l *Log) walLost() bool {
	if l.hdr.WALOff <= walHeaderSize {
		return false // nothing captured from this generation
	}
	data, err := os.ReadFile(l.dbPath + "-wal")
	if err != nil || len(data) < walHeaderSize {
		return true
	}
	m := binary.BigEndian.Uint32(data)
	if m != walMagicLE && m != walMagicBE {
		return true
	}
	bigEndian := m == walMagicBE
	s1, s2 := walChecksum(bigEndian, data[:24], 0, 0)
	if s1 != binary.BigEndian.Uint32(data[24:]) || s2 != binary.BigEndian.Uint32(data[28:]) {
		return true
	}
	salt := [2]uint32{binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:])}
	if salt != l.hdr.WALSalt {
		return false
	}
	for off := int64(walHeaderSize); off < l.hdr.WALOff; off += walFrameHdr + PageSize {
		if off+walFrameHdr+PageSize > int64(len(data)) {
			return true
		}
		fh := data[off : off+walFrameHdr]
		if binary.BigEndian.Uint32(fh[8:]) != salt[0] || binary.BigEndian.Uint32(fh[12:]) != salt[1] {
			return true
		}
		s1, s2 = walChecksum(bigEndian, fh[:8], s1, s2)
		s1, s2 = walChecksum(bigEndian, data[off+walFrameHdr:off+walFrameHdr+PageSize], s1, s2)
		if s1 != binary.BigEndian.Uint32(fh[16:]) || s2 != binary.BigEndian.Uint32(fh[20:]) {
			return true
		}
	}
	return false
}

// repair writes the log's frames since the last complete checkpoint back
// into the database as one transaction and checkpoints it, so that the
// database again holds everything the log (and the replicas) have.
// Re-applying page images the database already has changes nothing, so
// this is safe whatever survived. The caller holds the writer.
func (l *Log) repair(ctx context.Context, db *sqlite.DB) error {
	from := max(l.hdr.CkptFrame, l.hdr.Start)
	recs, err := l.ReadFrames(nil, from, int(^uint(0)>>1))
	if err != nil {
		return err
	}
	pages := map[uint32][]byte{}
	var size uint32
	for off := 0; off+FrameSize <= len(recs); off += FrameSize {
		r := recs[off : off+FrameSize]
		pages[binary.LittleEndian.Uint32(r[16:])] = r[24:]
		if s := binary.LittleEndian.Uint32(r[20:]); s != 0 {
			size = s
		}
	}
	if size != 0 {
		list := make([]sqlite.Page, 0, len(pages))
		for no, data := range pages {
			if no <= size {
				list = append(list, sqlite.Page{No: no, Data: data})
			}
		}
		slices.SortFunc(list, func(a, b sqlite.Page) int { return int(a.No) - int(b.No) })
		if err := db.ApplyPagesHeld(ctx, list, size); err != nil {
			return err
		}
	}
	if busy, _, _, err := db.CheckpointHeld(ctx, "TRUNCATE"); err != nil || busy != 0 {
		return fmt.Errorf("checkpoint after repair: busy=%d: %v", busy, err)
	}
	l.hdr.CkptFrame = l.hdr.Start + l.hdr.Count
	if err := l.commit(nil, [2]uint32{}, [2]uint32{}, walHeaderSize, l.sum); err != nil {
		return err
	}
	l.log.Warn("database repaired from the replication log (its WAL had lost frames the log had)",
		"from_frame", from, "frames", len(recs)/FrameSize)
	return nil
}
