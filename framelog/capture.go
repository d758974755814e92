package framelog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ephpm/ephpm/sqlite"
)

const (
	walHeaderSize = 32
	walFrameHdr   = 24
	walMagicLE    = 0x377f0682
	walMagicBE    = 0x377f0683
)

// afterCommit is the commit hook: log the new transaction(s), then
// compact when the log has grown long.
func (l *Log) afterCommit(ctx context.Context, db *sqlite.DB) error {
	if err := l.capture(); err != nil {
		return err
	}
	l.mu.RLock()
	count := l.hdr.Count
	l.mu.RUnlock()
	if count > l.compact {
		if err := l.compactNow(ctx, db); err != nil {
			// The log stays valid, just long; try again next commit.
			l.log.Warn("replication log compaction failed", "err", err)
		}
	}
	return nil
}

// capture reads every committed frame after the cursor from the WAL and
// logs it. The caller holds the site's writer, so the WAL does not change
// underneath (a checkpoint only runs after capture returns).
func (l *Log) capture() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("framelog: closed")
	}
	if l.wal == nil {
		f, err := os.Open(l.dbPath + "-wal")
		if errors.Is(err, os.ErrNotExist) {
			return nil // nothing written since the last checkpoint
		}
		if err != nil {
			return fmt.Errorf("framelog: open WAL: %w", err)
		}
		l.wal = f
	}
	// The WAL may have been deleted and recreated (last connection
	// closed): compare with the path's file.
	st, err := l.wal.Stat()
	if err != nil {
		return fmt.Errorf("framelog: WAL: %w", err)
	}
	if pst, perr := os.Stat(l.dbPath + "-wal"); perr != nil || !os.SameFile(st, pst) {
		l.wal.Close() // only read
		l.wal = nil
		if perr != nil {
			return nil
		}
	}
	return l.captureLocked()
}

func (l *Log) captureLocked() error {
	if l.wal == nil {
		f, err := os.Open(l.dbPath + "-wal")
		if err != nil {
			return fmt.Errorf("framelog: open WAL: %w", err)
		}
		l.wal = f
	}
	st, err := l.wal.Stat()
	if err != nil {
		return fmt.Errorf("framelog: WAL: %w", err)
	}
	size := st.Size()
	if size < walHeaderSize {
		return nil // truncated by a checkpoint: nothing new
	}
	var wh [walHeaderSize]byte
	if _, err := l.wal.ReadAt(wh[:], 0); err != nil {
		return fmt.Errorf("framelog: WAL header: %w", err)
	}
	m := binary.BigEndian.Uint32(wh[0:])
	if m != walMagicLE && m != walMagicBE {
		return fmt.Errorf("framelog: WAL header: bad magic %#x", m)
	}
	if ps := binary.BigEndian.Uint32(wh[8:]); ps != PageSize {
		return fmt.Errorf("framelog: WAL page size %d, want %d", ps, PageSize)
	}
	bigEndian := m == walMagicBE
	salt := [2]uint32{binary.BigEndian.Uint32(wh[16:]), binary.BigEndian.Uint32(wh[20:])}
	off, sum := l.hdr.WALOff, l.hdr.WALSum
	ckpt := l.hdr.CkptFrame
	if salt != l.hdr.WALSalt || off < walHeaderSize {
		// SQLite restarts the WAL only after a complete checkpoint: all
		// frames logged so far are in the database file.
		ckpt = l.hdr.Start + l.hdr.Count
		// A new WAL generation (after our checkpoint): start over.
		s1, s2 := walChecksum(bigEndian, wh[:24], 0, 0)
		if s1 != binary.BigEndian.Uint32(wh[24:]) || s2 != binary.BigEndian.Uint32(wh[28:]) {
			return errors.New("framelog: WAL header checksum mismatch")
		}
		off, sum = walHeaderSize, [2]uint32{s1, s2}
	}
	if size <= off {
		return nil
	}
	buf := make([]byte, size-off)
	if _, err := l.wal.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("framelog: read WAL: %w", err)
	}
	var (
		recs      []byte
		pending   int // records of the transaction being read
		commitOff = off
		commitSum = sum
		next      = l.hdr.Start + l.hdr.Count
		rsum      = l.sum
		commitRS  = rsum
		s1, s2    = sum[0], sum[1]
	)
	for p := 0; p+walFrameHdr+PageSize <= len(buf); p += walFrameHdr + PageSize {
		fh := buf[p : p+walFrameHdr]
		page := buf[p+walFrameHdr : p+walFrameHdr+PageSize]
		if binary.BigEndian.Uint32(fh[8:]) != salt[0] || binary.BigEndian.Uint32(fh[12:]) != salt[1] {
			break // a frame from an earlier generation: the end
		}
		s1, s2 = walChecksum(bigEndian, fh[:8], s1, s2)
		s1, s2 = walChecksum(bigEndian, page, s1, s2)
		if s1 != binary.BigEndian.Uint32(fh[16:]) || s2 != binary.BigEndian.Uint32(fh[20:]) {
			break // torn or stale frame: the end
		}
		pgno, commit := binary.BigEndian.Uint32(fh[0:]), binary.BigEndian.Uint32(fh[4:])
		recs, rsum = appendRecord(recs, next, rsum, pgno, commit, page)
		next++
		pending++
		if commit != 0 {
			pending = 0
			commitOff = off + int64(p+walFrameHdr+PageSize)
			commitSum = [2]uint32{s1, s2}
			commitRS = rsum
			l.stats.Transactions++
		}
	}
	// Never log past the last commit frame: later frames may be rewritten.
	recs = recs[:len(recs)-pending*FrameSize]
	if len(recs) == 0 && salt == l.hdr.WALSalt && commitOff == l.hdr.WALOff {
		return nil
	}
	l.hdr.CkptFrame = ckpt
	return l.commit(recs, salt, commitSum, commitOff, commitRS)
}

// walChecksum is SQLite's WAL checksum over b (a multiple of 8 bytes).
func walChecksum(bigEndian bool, b []byte, s1, s2 uint32) (uint32, uint32) {
	order := binary.ByteOrder(binary.LittleEndian)
	if bigEndian {
		order = binary.BigEndian
	}
	for i := 0; i+8 <= len(b); i += 8 {
		s1 += order.Uint32(b[i:]) + s2
		s2 += order.Uint32(b[i+4:]) + s1
	}
	return s1, s2
}
