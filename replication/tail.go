package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/ephpm/ephpm/framelog"
)

// DefaultTailFrames is how many of the frames it applied last a replica
// keeps (<db>-replica-tail, ~16 MB): promoted, it starts its log with
// them, so replicas that were up to that many frames behind at a move
// continue from the log instead of copying the database. The file grows
// to twice this before its head is cut.
const DefaultTailFrames = 4096

const (
	tailMagic   = "EPHPMRT1"
	tailHdrSize = 64
	// A record in the tail: the frame as the primary logged it, then a
	// CRC-32 over the log ID and the frame (the frame's own checksum
	// leaves its header out and needs the previous one).
	tailRecSize = framelog.FrameSize + 4
)

func tailPath(dbPath string) string { return dbPath + "-replica-tail" }

// tailFile is the replica's tail: records of log id, numbered from start,
// whole transactions (start is a transaction's first frame). It is not
// synced: what a crash leaves is checked record by record when it is
// read (readTail), and a tail that does not reach the position exactly
// is not used. A (log ID, frame number) pair names one frame forever
// (a reset log gets a new ID; a replica whose primary lost frames
// starts its tail over), so a record that checks out is never a wrong
// frame. Used by the site's stream goroutine only.
type tailFile struct {
	f        *os.File
	path     string
	id       string
	start, n uint64
	max      uint64
}

// openTail opens the tail for a replica at pos, keeping the records
// that check out and end exactly at pos.Next; otherwise it starts over,
// empty, at pos.Next.
func openTail(dbPath string, pos position, max int) (*tailFile, error) {
	t := &tailFile{path: tailPath(dbPath), max: uint64(max)}
	start, n, err := scanTail(t.path, pos.LogID, pos.Next, nil)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replica tail: %w", err)
	}
	t.f = f
	if n == 0 {
		if err := t.reset(pos.LogID, pos.Next); err != nil {
			return nil, errors.Join(err, f.Close())
		}
		return t, nil
	}
	t.id, t.start, t.n = pos.LogID, start, n
	if err := f.Truncate(tailHdrSize + int64(n)*tailRecSize); err != nil {
		return nil, errors.Join(fmt.Errorf("replica tail: %w", err), f.Close())
	}
	return t, nil
}

// readTail returns the tail's records (the log's layout, FrameSize each)
// of log id that end exactly at next — whole transactions — or nil.
func readTail(dbPath, id string, next uint64) ([]byte, error) {
	var recs []byte
	_, _, err := scanTail(tailPath(dbPath), id, next, &recs)
	return recs, err
}

// scanTail checks the tail file at path: the header names log id, and
// records follow, numbered on from its start, each with a good CRC; the
// first bad one ends them (a torn write), as does frame next. It counts
// those before next, and only if they reach it and end a transaction:
// otherwise n is 0. With out set, it appends them there. A missing
// file is an empty tail.
func scanTail(path, id string, next uint64, out *[]byte) (start, n uint64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("replica tail: %w", err)
	}
	defer f.Close() // only read
	h := make([]byte, tailHdrSize)
	if _, err := io.ReadFull(f, h); err != nil || id == "" ||
		string(h[:8]) != tailMagic || crc32.ChecksumIEEE(h[:60]) != binary.LittleEndian.Uint32(h[60:]) ||
		string(h[8:44]) != id {
		return 0, 0, nil // none, torn, or another log's: not used
	}
	start = binary.LittleEndian.Uint64(h[44:])
	if start >= next || next-start > 1<<24 {
		return 0, 0, nil
	}
	rec := make([]byte, tailRecSize)
	var size uint32
	base := 0
	if out != nil {
		base = len(*out)
	}
	for n < next-start {
		if _, err := io.ReadFull(f, rec); err != nil {
			break // the end, or a torn last record
		}
		fr := rec[:framelog.FrameSize]
		if binary.LittleEndian.Uint32(rec[framelog.FrameSize:]) != recCRC(id, fr) ||
			binary.LittleEndian.Uint64(fr) != start+n {
			break
		}
		size = binary.LittleEndian.Uint32(fr[20:])
		if out != nil {
			*out = append(*out, fr...)
		}
		n++
	}
	if n != next-start || size == 0 {
		if out != nil {
			*out = (*out)[:base]
		}
		return 0, 0, nil
	}
	return start, n, nil
}

func recCRC(id string, frame []byte) uint32 {
	return crc32.Update(crc32.ChecksumIEEE([]byte(id)), crc32.IEEETable, frame)
}

// reset empties the tail: the next records will be log id's from next.
func (t *tailFile) reset(id string, next uint64) error {
	t.id, t.start, t.n = id, next, 0
	if err := t.f.Truncate(0); err != nil {
		return fmt.Errorf("replica tail: %w", err)
	}
	if _, err := t.f.WriteAt(tailHeader(id, next), 0); err != nil {
		return fmt.Errorf("replica tail: %w", err)
	}
	return nil
}

func tailHeader(id string, start uint64) []byte {
	h := make([]byte, tailHdrSize)
	copy(h, tailMagic)
	copy(h[8:44], id)
	binary.LittleEndian.PutUint64(h[44:], start)
	binary.LittleEndian.PutUint32(h[60:], crc32.ChecksumIEEE(h[:60]))
	return h
}

// add appends a batch's records (frames first.., whole transactions) of
// log id, before the position moves past them. A batch that does not
// continue the tail (another log, a gap) starts it over; one that
// overlaps it (a batch applied again after a failure) replaces what
// follows its first frame.
func (t *tailFile) add(id string, first uint64, msgs [][]byte) error {
	if id != t.id || first < t.start || first > t.start+t.n {
		if err := t.reset(id, first); err != nil {
			return err
		}
	} else if first < t.start+t.n {
		t.n = first - t.start
		if err := t.f.Truncate(tailHdrSize + int64(t.n)*tailRecSize); err != nil {
			return fmt.Errorf("replica tail: %w", err)
		}
	}
	var buf []byte
	for _, m := range msgs {
		for off := 0; off+framelog.FrameSize <= len(m); off += framelog.FrameSize {
			fr := m[off : off+framelog.FrameSize]
			buf = append(buf, fr...)
			buf = binary.LittleEndian.AppendUint32(buf, recCRC(id, fr))
		}
	}
	if _, err := t.f.WriteAt(buf, tailHdrSize+int64(t.n)*tailRecSize); err != nil {
		// What was written may be torn: start over rather than build
		// on it.
		return errors.Join(fmt.Errorf("replica tail: %w", err), t.reset(id, first))
	}
	t.n += uint64(len(buf) / tailRecSize)
	if t.n >= 2*t.max {
		return t.cut()
	}
	return nil
}

// cut drops the tail's head, keeping about the last max records from a
// transaction's first frame: written to a temp file and renamed over
// the tail. The rename is not synced: after a power cut the longer tail
// may be back, whose records are as true.
func (t *tailFile) cut() error {
	rec := make([]byte, tailRecSize)
	keep := uint64(0)
	for i := t.n - t.max; i < t.n; i++ {
		// Record i starts a transaction if record i-1 ends one.
		if _, err := t.f.ReadAt(rec, tailHdrSize+int64(i-1)*tailRecSize); err != nil {
			return fmt.Errorf("replica tail: %w", err)
		}
		if binary.LittleEndian.Uint32(rec[20:]) != 0 {
			keep = t.n - i
			break
		}
	}
	if keep == 0 {
		// One transaction larger than the bound: keep none of it.
		return t.reset(t.id, t.start+t.n)
	}
	tmp := t.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("replica tail: %w", err)
	}
	from := t.start + t.n - keep
	_, err = f.WriteAt(tailHeader(t.id, from), 0)
	if err == nil {
		_, err = io.Copy(io.NewOffsetWriter(f, tailHdrSize), io.NewSectionReader(t.f, tailHdrSize+int64(t.n-keep)*tailRecSize, int64(keep)*tailRecSize))
	}
	if err == nil {
		err = os.Rename(tmp, t.path)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("replica tail: %w", err), f.Close(), os.Remove(tmp))
	}
	// The old file's records are all in the new one or dropped; its
	// close can lose nothing.
	t.f.Close()
	t.f, t.start, t.n = f, from, keep
	return nil
}

func (t *tailFile) close() error { return t.f.Close() }

// writeTail makes recs (frames from start of log id, whole transactions,
// the log's layout) the tail of the replica at dbPath: a demoted
// primary's last frames, so that a move back needs no snapshot for
// replicas a little behind either.
func writeTail(dbPath, id string, start uint64, recs []byte, max int) error {
	f, err := os.OpenFile(tailPath(dbPath), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("replica tail: %w", err)
	}
	t := &tailFile{f: f, path: tailPath(dbPath), max: uint64(max)}
	if err := t.reset(id, start); err != nil {
		return errors.Join(err, t.close())
	}
	if err := t.add(id, start, [][]byte{recs}); err != nil {
		return errors.Join(err, t.close())
	}
	return t.close()
}

// lastFrames reads about the last max records of l, from a
// transaction's first frame: what a demoted primary keeps as its tail.
func lastFrames(l *framelog.Log, max int) (start uint64, recs []byte, err error) {
	first, next := l.Start(), l.Next()
	if next == first {
		return next, nil, nil
	}
	from := first
	if next-first > uint64(max) {
		from = next - uint64(max) - 1 // one before, to see where a transaction ends
	}
	recs, err = l.ReadFramesPartial(nil, from, int(next-from))
	if err != nil {
		return 0, nil, err
	}
	if from == first {
		return from, recs, nil // the log starts with a transaction
	}
	for off := 0; off+framelog.FrameSize <= len(recs); off += framelog.FrameSize {
		if binary.LittleEndian.Uint32(recs[off+20:]) != 0 {
			return from + uint64(off/framelog.FrameSize) + 1, recs[off+framelog.FrameSize:], nil
		}
	}
	return next, nil, nil
}
