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

// The directories of an adoption in progress, beside the log's own: the
// new log is built whole in adoptDir, then swapped in (the old one moves
// to oldDir, removed last).
func adoptDir(dir string) string { return dir + ".adopt" }
func oldDir(dir string) string   { return dir + ".old" }

// adopt replaces whatever the log's directory holds with a log that
// continues a.ID from a.Next: the database as it is now (checkpointed) is
// the snapshot of frame a.Next-1, and the log has no records yet. The
// caller holds the writer.
//
// The steps, and what a crash after each leaves (Open refuses all but
// the last with ErrInterrupted; Open with the same Adopt starts over):
//  1. build <dir>.adopt (snapshot, log; files and directory synced)
//  2. rename <dir> to <dir>.old
//  3. rename <dir>.adopt to <dir>, sync the parent directory
//  4. remove <dir>.old — a leftover is removed by the next Open.
func (l *Log) adopt(ctx context.Context, db *sqlite.DB, a Adopt) error {
	if a.Next == 0 {
		// Nothing applied yet: the log starts as any new one does, with
		// the whole (empty) database as its first transaction.
		for _, d := range []string{l.dir, adoptDir(l.dir), oldDir(l.dir)} {
			if err := os.RemoveAll(d); err != nil {
				return fmt.Errorf("framelog: adopt: %w", err)
			}
		}
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return fmt.Errorf("framelog: %w", err)
		}
		if err := l.create(ctx, db, a.ID); err != nil {
			return err
		}
		return l.install(db)
	}
	// The snapshot must be the database file alone: no WAL frames left.
	if busy, _, _, err := db.CheckpointHeld(ctx, "TRUNCATE"); err != nil || busy != 0 {
		return fmt.Errorf("framelog: adopt: checkpoint: busy=%d: %v", busy, err)
	}
	tmp := adoptDir(l.dir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	l.hdr = header{ID: a.ID}
	if err := l.writeSnapshot(tmp, a.Next-1, a.Sum); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	// The followed log's last records, if they check out, stay in the
	// log: the snapshot stands for frame a.Next-1, after them (Start <=
	// snapshot end + 1, as Open requires), and CkptFrame says the
	// database file holds them all. The rolling checksum before them is
	// not known here: StartSum is 0; new records chain on from the last
	// one kept. Without a tail the chain starts from a.Sum, the sum of
	// frame a.Next-1, so a replica there is seen to continue it.
	tail := a.Tail
	if err := checkTail(tail, a.Next); err != nil {
		l.log.Warn("adopting the log without the records before its end", "next", a.Next, "err", err)
		tail = nil
	}
	n := uint64(len(tail) / FrameSize)
	h := header{ID: a.ID, Start: a.Next - n, Count: n, WALOff: walHeaderSize, Seq: 1, CkptFrame: a.Next}
	if n == 0 {
		h.StartSum, h.SumKnown = a.Sum, a.SumKnown
	}
	if err := writeLog(filepath.Join(tmp, "log"), h, tail); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	old := oldDir(l.dir)
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	if err := os.Rename(l.dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	if err := os.Rename(tmp, l.dir); err != nil {
		return fmt.Errorf("framelog: adopt: %w", err)
	}
	if err := syncDir(filepath.Dir(l.dir)); err != nil {
		return fmt.Errorf("framelog: adopt: sync %s: %w", filepath.Dir(l.dir), err)
	}
	if err := os.RemoveAll(old); err != nil {
		// The new log is in place and durable; a leftover is removed by
		// the next Open.
		l.log.Warn("removing the replaced replication log", "dir", old, "err", err)
	}
	if err := l.recover(); err != nil {
		return err
	}
	l.log.Info("replication log adopted", "id", a.ID, "next", a.Next, "from", a.Next-n)
	return l.install(db)
}

// checkTail checks Adopt.Tail: whole records numbered up to next-1,
// no page 0, ending with a transaction's last frame.
func checkTail(tail []byte, next uint64) error {
	if len(tail) == 0 {
		return nil
	}
	n := uint64(len(tail) / FrameSize)
	if len(tail)%FrameSize != 0 || n > next {
		return fmt.Errorf("%d bytes of records before frame %d", len(tail), next)
	}
	for i := uint64(0); i < n; i++ {
		r := tail[i*FrameSize:]
		if no := binary.LittleEndian.Uint64(r); no != next-n+i {
			return fmt.Errorf("record %d is frame %d, want %d", i, no, next-n+i)
		}
		if binary.LittleEndian.Uint32(r[16:]) == 0 {
			return fmt.Errorf("frame %d has page 0", next-n+i)
		}
	}
	if binary.LittleEndian.Uint32(tail[len(tail)-FrameSize+20:]) == 0 {
		return fmt.Errorf("frame %d does not end a transaction", next-1)
	}
	return nil
}

// writeLog writes a log file with header h and records recs, synced.
func writeLog(path string, h header, recs []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(h.marshal(), int64(h.Seq%2)*slotSize); err != nil {
		f.Close() // the write's error is the one to report
		return err
	}
	if err := f.Truncate(headerSize); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(recs, headerSize); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkInterrupted refuses a directory an adoption left half-way (see
// adopt), and removes the old log an adoption that finished left behind.
func (l *Log) checkInterrupted() error {
	_, errDir := os.Stat(l.dir)
	_, errAdopt := os.Stat(adoptDir(l.dir))
	_, errOld := os.Stat(oldDir(l.dir))
	switch {
	case errAdopt == nil:
		return fmt.Errorf("%w (%s)", ErrInterrupted, adoptDir(l.dir))
	case errOld == nil && errors.Is(errDir, os.ErrNotExist):
		return fmt.Errorf("%w (%s)", ErrInterrupted, oldDir(l.dir))
	case errOld == nil:
		// Step 4 did not run: the log in place is the adopted one.
		if err := os.RemoveAll(oldDir(l.dir)); err != nil {
			l.log.Warn("removing the replaced replication log", "dir", oldDir(l.dir), "err", err)
		}
	}
	return nil
}

// checkSnapshot refuses a log whose snapshot belongs to another log, or
// ends before the log starts (frames in between would be missing).
func (l *Log) checkSnapshot() error {
	if l.hdr.Start == 0 {
		return nil
	}
	f, err := os.Open(filepath.Join(l.dir, "snapshot"))
	if err != nil {
		return fmt.Errorf("framelog: the log starts at frame %d but its snapshot: %w", l.hdr.Start, err)
	}
	defer f.Close() // only read
	h := make([]byte, 64)
	if _, err := io.ReadFull(f, h); err != nil || string(h[:8]) != snapMagic ||
		crc32.ChecksumIEEE(h[:56]) != binary.LittleEndian.Uint32(h[56:]) {
		return errors.New("framelog: snapshot header is damaged")
	}
	id, end := string(h[8:44]), binary.LittleEndian.Uint64(h[44:])
	if id != l.hdr.ID || end+1 < l.hdr.Start {
		return fmt.Errorf("framelog: snapshot (log %s, frame %d) does not go with the log (%s from frame %d)", id, end, l.hdr.ID, l.hdr.Start)
	}
	return nil
}

// Final opens the log of db as Open does (so what the WAL holds that it
// had not logged yet is logged), calls fn with it (to read its end and
// last records), and closes it again, taking its hooks off: what a
// primary that stopped without a clean demotion knows of its history
// when it comes back as a replica. The directory is left as it is; the
// caller records what it needs and removes it.
func Final(ctx context.Context, db *sqlite.DB, opts Options, fn func(*Log) error) error {
	opts.Adopt = nil
	l, err := Open(ctx, db, opts)
	if err != nil {
		return err
	}
	err = fn(l)
	// Every record was synced when appended: a close error loses
	// nothing fn read, but is returned with the rest.
	return errors.Join(err, db.WithWriter(ctx, func() error { l.Detach(); return nil }), l.Close())
}
