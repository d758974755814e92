package framelog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/ephpm/ephpm/sqlite"
)

const snapMagic = "EPHPMSN1"

// Snapshot is the database as of the commit of frame End: what a replica
// whose position the log no longer holds starts from.
type Snapshot struct {
	f      *os.File
	id     string
	end    uint64
	pages  uint32
	sum    uint64
	sumSet bool
}

// Sum is the rolling checksum of frame End, the seed of the frame
// after it; ok is false for a snapshot written before it was recorded.
func (s *Snapshot) Sum() (sum uint64, ok bool) { return s.sum, s.sumSet }

// ID is the log the snapshot belongs to.
func (s *Snapshot) ID() string { return s.id }

// End is the last frame the snapshot includes.
func (s *Snapshot) End() uint64 { return s.end }

// Pages is the database size in pages.
func (s *Snapshot) Pages() uint32 { return s.pages }

// ReadPage reads page no (1-based) into buf.
func (s *Snapshot) ReadPage(no uint32, buf []byte) error {
	if no == 0 || no > s.pages || len(buf) != PageSize {
		return fmt.Errorf("framelog: snapshot page %d of %d", no, s.pages)
	}
	_, err := s.f.ReadAt(buf, headerSize+int64(no-1)*PageSize)
	return err
}

// Reader returns the pages, in order, as one stream.
func (s *Snapshot) Reader() io.Reader {
	return io.NewSectionReader(s.f, headerSize, int64(s.pages)*PageSize)
}

// Close releases the snapshot (a compaction may already have replaced it).
func (s *Snapshot) Close() error { return s.f.Close() }

// Snapshot opens the current snapshot. With no compaction yet the log
// starts at frame 0 with the whole database, so none is needed and
// os.ErrNotExist is returned.
func (l *Log) Snapshot(context.Context) (*Snapshot, error) {
	l.mu.RLock()
	start := l.hdr.Start
	l.mu.RUnlock()
	f, err := os.Open(filepath.Join(l.dir, "snapshot"))
	if err != nil {
		if start == 0 {
			return nil, fmt.Errorf("framelog: no snapshot (the log starts at frame 0): %w", os.ErrNotExist)
		}
		return nil, fmt.Errorf("framelog: snapshot: %w", err)
	}
	h := make([]byte, 64)
	if _, err := io.ReadFull(f, h); err != nil || string(h[:8]) != snapMagic ||
		crc32.ChecksumIEEE(h[:56]) != binary.LittleEndian.Uint32(h[56:]) {
		f.Close()
		return nil, errors.New("framelog: snapshot header is damaged")
	}
	sn := &Snapshot{
		f: f, id: string(h[8:44]),
		end:   binary.LittleEndian.Uint64(h[44:]),
		pages: binary.LittleEndian.Uint32(h[52:]),
	}
	// The checksum follows the original header under its own CRC, so
	// older snapshots still open (without it).
	ext := make([]byte, 12)
	if _, err := f.ReadAt(ext, 64); err == nil && crc32.ChecksumIEEE(ext[:8]) == binary.LittleEndian.Uint32(ext[8:]) && !allZero(ext) {
		sn.sum, sn.sumSet = binary.LittleEndian.Uint64(ext), true
	}
	return sn, nil
}

// compactNow writes a snapshot of the database as of the last logged
// frame and starts a new, empty log after it (same ID: replicas that are
// current keep streaming). The caller holds the writer.
func (l *Log) compactNow(ctx context.Context, db *sqlite.DB) error {
	st, err := os.Stat(l.dbPath)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	dbPages := uint64(st.Size() / PageSize)
	l.mu.RLock()
	count := l.hdr.Count
	l.mu.RUnlock()
	if count < 2*dbPages {
		return nil // the log is still smaller than a snapshot would be
	}
	// The guard captures first, so a complete checkpoint leaves the
	// database file equal to the state after the last logged frame.
	busy, _, _, err := db.CheckpointHeld(ctx, "TRUNCATE")
	if err != nil {
		return err
	}
	if busy != 0 {
		return errors.New("readers hold the WAL; later")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.hdr.Start + l.hdr.Count
	if next == 0 {
		return nil
	}
	if err := l.writeSnapshot(l.dir, next-1, l.sum); err != nil {
		return err
	}
	// A new log file with no records, starting at next.
	tmp := filepath.Join(l.dir, "log.tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	h := header{ID: l.hdr.ID, Start: next, StartSum: l.sum, SumKnown: true, WALSalt: [2]uint32{}, WALOff: walHeaderSize, Seq: 1, CkptFrame: next}
	if _, err := f.WriteAt(h.marshal(), slotSize); err != nil {
		f.Close()
		return fmt.Errorf("compact: %w", err)
	}
	if err := f.Truncate(headerSize); err != nil {
		f.Close()
		return fmt.Errorf("compact: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, "log")); err != nil {
		f.Close()
		return fmt.Errorf("compact: %w", err)
	}
	// The new file is the log now (its name says so): swap before
	// anything can fail, and close the old one, whose every byte was
	// synced when it was written (its close can lose nothing).
	old := l.f
	l.f, l.hdr = f, h
	if err := old.Close(); err != nil {
		l.log.Warn("closing the replaced replication log", "err", err)
	}
	if l.wal != nil {
		l.wal.Close() // only read
		l.wal = nil
	}
	l.stats.Compactions++
	if err := syncDir(l.dir); err != nil {
		// Until the rename is durable no commit may be acknowledged: a
		// crash could bring the old log back without them.
		l.dirPending = true
		return fmt.Errorf("compact: sync the log's directory: %w", err)
	}
	l.log.Info("replication log compacted", "snapshot_end", next-1, "pages", dbPages)
	return nil
}

// writeSnapshot copies the (fully checkpointed) database file into dir.
// Caller holds mu and the writer.
func (l *Log) writeSnapshot(dir string, end, sum uint64) error {
	src, err := os.Open(l.dbPath)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	pages := uint32(st.Size() / PageSize)
	tmp := filepath.Join(dir, "snapshot.tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			f.Close() // a failure before: the error returned says what
		}
	}()
	h := make([]byte, headerSize)
	copy(h, snapMagic)
	copy(h[8:44], l.hdr.ID)
	binary.LittleEndian.PutUint64(h[44:], end)
	binary.LittleEndian.PutUint32(h[52:], pages)
	binary.LittleEndian.PutUint32(h[56:], crc32.ChecksumIEEE(h[:56]))
	binary.LittleEndian.PutUint64(h[64:], sum)
	binary.LittleEndian.PutUint32(h[72:], crc32.ChecksumIEEE(h[64:72]))
	if _, err := f.Write(h); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if _, err := io.CopyN(f, src, int64(pages)*PageSize); err != nil {
		return fmt.Errorf("snapshot: copy: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "snapshot")); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	// Durable before the caller renames a log that starts after it into
	// place: were the log's rename to reach the disk and not this one, the
	// log would start after the snapshot it has, and Open refuses it.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", dir, err)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
