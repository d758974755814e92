// Package framelog is a replicated site's durable frame log on its
// primary: after every commit it reads the transaction's pages from
// SQLite's WAL and appends them, numbered with a global, gap-free frame
// number, to a log file that is synced before SQLite may checkpoint them.
// Replicas and libSQL clients read the log; compaction replaces its head
// with a snapshot of the database.
//
// A record is libSQL's frame layout (little endian): frame_no u64,
// checksum u64 (rolling CRC-64/GO-ISO over the pages), page_no u32,
// size_after u32 (non-zero on a transaction's last frame: the database
// size in pages), then the 4096-byte page. So the log can be served to
// libSQL embedded replicas as it is on disk.
package framelog

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

const (
	// PageSize is the database page size (fixed for every site).
	PageSize = sqlite.PageSize
	// FrameSize is one record: a 24-byte header and a page.
	FrameSize = 24 + PageSize

	// DefaultCompactFrames is the log length past which the primary
	// replaces the log's head with a snapshot (64 MB of records), if the
	// log is also longer than the database itself.
	DefaultCompactFrames = 16384

	// DefaultBaseFrames: databases up to 16 MB start a new log as its
	// first transaction.
	DefaultBaseFrames = 4096

	headerSize = 4096 // two header slots of 512 bytes, then records
	slotSize   = 512
	magic      = "EPHPMLG1"
)

var crcTable = crc64.MakeTable(crc64.ISO)

// header is the log's commit point: records past Count are ignored (they
// will be captured again from the WAL, which the cursor still covers).
type header struct {
	Seq      uint64 // the newer valid slot wins
	ID       string // UUID
	Start    uint64 // frame number of the first record
	Count    uint64 // records that are part of the log
	StartSum uint64 // checksum seed of the first record
	// WAL cursor: the next WAL byte to capture and the WAL's salts and
	// running checksum there.
	WALSalt [2]uint32
	WALSum  [2]uint32
	WALOff  int64
	// CkptFrame: every frame before it is in the database file itself
	// (SQLite started a new WAL generation after it, which it does only
	// after a complete checkpoint).
	CkptFrame uint64
	// SumKnown: StartSum is the true checksum of frame Start-1 (not the
	// case for a log adopted with a tail, whose seed is not known).
	// Stored after the original fields under its own CRC: a log
	// written before it reads as unknown.
	SumKnown bool
}

func (h *header) marshal() []byte {
	b := make([]byte, slotSize)
	copy(b, magic)
	binary.LittleEndian.PutUint64(b[8:], h.Seq)
	copy(b[16:52], h.ID)
	binary.LittleEndian.PutUint64(b[52:], h.Start)
	binary.LittleEndian.PutUint64(b[60:], h.Count)
	binary.LittleEndian.PutUint64(b[68:], h.StartSum)
	binary.LittleEndian.PutUint32(b[76:], h.WALSalt[0])
	binary.LittleEndian.PutUint32(b[80:], h.WALSalt[1])
	binary.LittleEndian.PutUint32(b[84:], h.WALSum[0])
	binary.LittleEndian.PutUint32(b[88:], h.WALSum[1])
	binary.LittleEndian.PutUint64(b[92:], uint64(h.WALOff))
	binary.LittleEndian.PutUint64(b[100:], h.CkptFrame)
	binary.LittleEndian.PutUint32(b[108:], crc32.ChecksumIEEE(b[:108]))
	if h.SumKnown {
		b[112] = 1
	}
	binary.LittleEndian.PutUint32(b[116:], crc32.ChecksumIEEE(b[:116]))
	return b
}

func unmarshalHeader(b []byte) (header, bool) {
	if len(b) < 112 || string(b[:8]) != magic || crc32.ChecksumIEEE(b[:108]) != binary.LittleEndian.Uint32(b[108:]) {
		return header{}, false
	}
	known := len(b) >= 120 && crc32.ChecksumIEEE(b[:116]) == binary.LittleEndian.Uint32(b[116:]) && b[112]&1 != 0
	return header{
		SumKnown:  known,
		Seq:       binary.LittleEndian.Uint64(b[8:]),
		ID:        string(b[16:52]),
		Start:     binary.LittleEndian.Uint64(b[52:]),
		Count:     binary.LittleEndian.Uint64(b[60:]),
		StartSum:  binary.LittleEndian.Uint64(b[68:]),
		WALSalt:   [2]uint32{binary.LittleEndian.Uint32(b[76:]), binary.LittleEndian.Uint32(b[80:])},
		WALSum:    [2]uint32{binary.LittleEndian.Uint32(b[84:]), binary.LittleEndian.Uint32(b[88:])},
		WALOff:    int64(binary.LittleEndian.Uint64(b[92:])),
		CkptFrame: binary.LittleEndian.Uint64(b[100:]),
	}, true
}

// Log is one site's frame log. Its methods are safe for concurrent use;
// Capture must only be called with the site's writer held.
type Log struct {
	dir      string
	dbPath   string
	log      *slog.Logger
	compact  uint64
	base     int
	onAppend func(next uint64)

	mu   sync.RWMutex // guards f, hdr, sum against compaction's swap
	f    *os.File
	hdr  header
	sum  uint64 // checksum of the last record
	wal  *os.File
	wake chan struct{} // closed and replaced on every append
	// dirPending: a rename in dir (compaction's new log) or the log's
	// own name (a log found by Open) is not known to be durable; commit
	// syncs dir and its parent (syncNames) before it may acknowledge
	// anything.
	dirPending bool

	stats Stats

	unhook func() // takes the commit hook off the database (Detach)
	db     *sqlite.DB
}

// ErrInterrupted: the log's directory shows an adoption (Options.Adopt)
// that did not finish; only opening with the same Adopt again may go on
// from it, since the directory may hold another node's era of the log.
var ErrInterrupted = errors.New("framelog: an adoption of the log was interrupted: open with Options.Adopt again")

// Adopt names the log a promoted replica continues: its ID and the next
// frame number, the replica's applied position. The database file must
// be exactly the state after frame Next-1 of that log.
type Adopt struct {
	ID   string
	Next uint64
	// Tail, if set, is the followed log's records just before Next
	// (FrameSize each, the log's layout): frames Next-len/FrameSize up to
	// Next-1, whole transactions. The adopted log starts with them, so
	// replicas a little behind Next continue from the log instead of the
	// snapshot. Records that do not fit that are left out (a warning):
	// the log then starts at Next.
	Tail []byte
	// Sum is the rolling checksum of frame Next-1 as the followed log
	// has it (the replica's position), if SumKnown: without a tail the
	// new log's chain starts from it, so replicas can check that they
	// continue the same history.
	Sum      uint64
	SumKnown bool
}

// Stats are counters for metrics.
type Stats struct {
	Transactions, Frames, Compactions uint64
}

// Options configure Open.
type Options struct {
	// CompactFrames is DefaultCompactFrames when 0.
	CompactFrames int
	// BaseFrames is the largest database a new log starts with as its
	// first transaction (DefaultBaseFrames when 0); a larger one starts as
	// a snapshot, so that no stream message has to carry it whole.
	BaseFrames int
	// OnAppend, if set, is called with the new Next after every append,
	// on the goroutine that logs a commit (the commit hook, or Open
	// catching up), with the site's writer and the log's lock held: calls
	// come one at a time. It must not block, and must not call the Log
	// (its lock is held) nor use the database's writer.
	OnAppend func(next uint64)
	// Adopt, if set, makes Open start a log that continues another
	// node's (a replica promoted to primary): same ID, numbering from
	// Adopt.Next, with the database as it is now as the snapshot standing
	// for every frame before (the state after a compaction). Whatever the
	// directory held before is replaced (it may be this node's log from
	// an earlier time as primary, at another position). Adopting costs a
	// checkpoint and a copy of the database file.
	Adopt  *Adopt
	Logger *slog.Logger
}

// Dir is where the log of the database at dbPath lives.
func Dir(dbPath string) string { return dbPath + "-replog" }

// Open opens (or creates) the log of db and brings it up to date with the
// WAL: transactions that committed before a crash but were not logged yet
// are logged now. It installs the commit hook and the checkpoint guard, so
// from here on every commit is logged before it is acknowledged.
func Open(ctx context.Context, db *sqlite.DB, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CompactFrames <= 0 {
		opts.CompactFrames = DefaultCompactFrames
	}
	if opts.BaseFrames <= 0 {
		opts.BaseFrames = DefaultBaseFrames
	}
	l := &Log{
		dir: Dir(db.Path()), dbPath: db.Path(), log: opts.Logger.With("db", db.Path()),
		compact: uint64(opts.CompactFrames), wake: make(chan struct{}), onAppend: opts.OnAppend, base: opts.BaseFrames,
	}
	if a := opts.Adopt; a != nil && len(a.ID) != 36 {
		return nil, fmt.Errorf("framelog: adopt: bad log id %q", a.ID)
	}
	// Everything below runs with the writer held: no commit can slip
	// between reading the WAL and installing the hook.
	err := db.WithWriter(ctx, func() error {
		if opts.Adopt != nil {
			return l.adopt(ctx, db, *opts.Adopt)
		}
		if err := l.checkInterrupted(); err != nil {
			return err
		}
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return fmt.Errorf("framelog: %w", err)
		}
		path := filepath.Join(l.dir, "log")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := l.create(ctx, db, ""); err != nil {
				return err
			}
		} else if err := l.recover(); err != nil {
			return err
		} else if l.walLost() {
			if err := l.repair(ctx, db); err != nil {
				return fmt.Errorf("framelog: repair from the log: %w", err)
			}
		}
		return l.install(db)
	})
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// install catches up with the WAL and puts the commit hook and the
// checkpoint guard on the database. The caller holds the writer.
func (l *Log) install(db *sqlite.DB) error {
	if err := l.capture(); err != nil {
		return fmt.Errorf("framelog: catch up with the WAL: %w", err)
	}
	l.db = db
	l.unhook = db.OnCommit(func(ctx context.Context, db *sqlite.DB) error { return l.afterCommit(ctx, db) })
	db.SetCheckpointGuard(func(context.Context) error { return l.capture() })
	return nil
}

// Detach takes the log's commit hook and checkpoint guard off its
// database (the site is no longer primary here: the replica's applied
// frames must not enter this log). The caller holds the database's
// writer; the log itself is still to be closed.
func (l *Log) Detach() {
	if l.unhook != nil {
		l.unhook()
		l.unhook = nil
	}
	if l.db != nil {
		l.db.SetCheckpointGuard(nil)
		l.db = nil
	}
}

// create starts a new log whose first transaction is the whole database
// as it is now, so a replica starting from frame 0 needs no snapshot. id
// "" means a new ID.
func (l *Log) create(ctx context.Context, db *sqlite.DB, id string) error {
	if busy, _, _, err := db.CheckpointHeld(ctx, "TRUNCATE"); err != nil || busy != 0 {
		return fmt.Errorf("framelog: checkpoint before the first frame: busy=%d: %v", busy, err)
	}
	if id == "" {
		var err error
		if id, err = newUUID(); err != nil {
			return err
		}
	}
	tmp := filepath.Join(l.dir, "log.tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("framelog: %w", err)
	}
	l.f = f
	l.hdr = header{ID: id, WALOff: 32, SumKnown: true}
	if st, err := os.Stat(l.dbPath); err == nil && st.Size()/PageSize > int64(l.base) {
		// A large database: the log starts at frame 1 after a snapshot
		// that stands for frame 0.
		if err := l.writeSnapshot(l.dir, 0, 0); err != nil {
			return err
		}
		l.hdr.Start, l.hdr.CkptFrame = 1, 1
		if err := l.commit(nil, l.hdr.WALSalt, l.hdr.WALSum, 32, 0); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(l.dir, "log")); err != nil {
			return fmt.Errorf("framelog: %w", err)
		}
		if err := l.syncNames(); err != nil {
			return fmt.Errorf("framelog: new log: %w", err)
		}
		l.log.Info("replication log created from a snapshot", "id", id, "pages", st.Size()/PageSize)
		return nil
	}
	var pages [][]byte
	data, err := os.ReadFile(l.dbPath)
	if err != nil {
		return fmt.Errorf("framelog: read database: %w", err)
	}
	for off := 0; off+PageSize <= len(data); off += PageSize {
		pages = append(pages, data[off:off+PageSize])
	}
	recs := make([]byte, 0, len(pages)*FrameSize)
	sum := uint64(0)
	for i, p := range pages {
		size := uint32(0)
		if i == len(pages)-1 {
			size = uint32(len(pages))
		}
		recs, sum = appendRecord(recs, uint64(i), sum, uint32(i+1), size, p)
	}
	l.hdr.CkptFrame = uint64(len(pages)) // the base is the checkpointed file
	if err := l.commit(recs, l.hdr.WALSalt, l.hdr.WALSum, 32, sum); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, "log")); err != nil {
		return fmt.Errorf("framelog: %w", err)
	}
	if err := l.syncNames(); err != nil {
		return fmt.Errorf("framelog: new log: %w", err)
	}
	l.log.Info("replication log created", "id", id, "frames", len(pages))
	return nil
}

// recover opens an existing log and drops records past its commit point.
func (l *Log) recover() error {
	f, err := os.OpenFile(filepath.Join(l.dir, "log"), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("framelog: %w", err)
	}
	l.f = f
	buf := make([]byte, headerSize)
	if _, err := io.ReadFull(f, buf); err != nil {
		return fmt.Errorf("framelog: %s: short header: %w", f.Name(), err)
	}
	a, okA := unmarshalHeader(buf[:slotSize])
	b, okB := unmarshalHeader(buf[slotSize : 2*slotSize])
	switch {
	case okA && (!okB || a.Seq > b.Seq):
		l.hdr = a
	case okB:
		l.hdr = b
	default:
		return fmt.Errorf("framelog: %s: no valid header", f.Name())
	}
	end := int64(headerSize) + int64(l.hdr.Count)*FrameSize
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("framelog: %w", err)
	}
	if err := l.checkSnapshot(); err != nil {
		return err
	}
	// An Open that failed, or a crash, may have left the log's name (or
	// its directory's) not yet durable: the first commit syncs them.
	l.dirPending = true
	l.sum = l.hdr.StartSum
	if l.hdr.Count > 0 {
		rec := make([]byte, 24)
		if _, err := f.ReadAt(rec, end-FrameSize); err != nil {
			return fmt.Errorf("framelog: last record: %w", err)
		}
		l.sum = binary.LittleEndian.Uint64(rec[8:])
	}
	return nil
}

// appendRecord appends one record and returns the new rolling checksum.
func appendRecord(dst []byte, no, sum uint64, pgno, sizeAfter uint32, page []byte) ([]byte, uint64) {
	sum = crc64.Update(sum, crcTable, page)
	var h [24]byte
	binary.LittleEndian.PutUint64(h[0:], no)
	binary.LittleEndian.PutUint64(h[8:], sum)
	binary.LittleEndian.PutUint32(h[16:], pgno)
	binary.LittleEndian.PutUint32(h[20:], sizeAfter)
	dst = append(dst, h[:]...)
	return append(dst, page...), sum
}

// commit appends recs, moves the WAL cursor and makes both durable with
// one header write and one sync. Caller holds mu (or owns l exclusively).
func (l *Log) commit(recs []byte, salt, walSum [2]uint32, walOff int64, sum uint64) error {
	if l.dirPending {
		// The log file itself may not be durable under its name yet.
		if err := l.syncNames(); err != nil {
			return fmt.Errorf("framelog: %w", err)
		}
		l.dirPending = false
	}
	n := uint64(len(recs) / FrameSize)
	if n > 0 {
		off := int64(headerSize) + int64(l.hdr.Count)*FrameSize
		if _, err := l.f.WriteAt(recs, off); err != nil {
			return fmt.Errorf("framelog: append: %w", err)
		}
	}
	h := l.hdr
	h.Seq++
	h.Count += n
	h.WALSalt, h.WALSum, h.WALOff = salt, walSum, walOff
	if _, err := l.f.WriteAt(h.marshal(), int64(h.Seq%2)*slotSize); err != nil {
		return fmt.Errorf("framelog: header: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("framelog: sync: %w", err)
	}
	l.hdr = h
	if n > 0 {
		l.sum = sum
		l.stats.Frames += n
		close(l.wake)
		l.wake = make(chan struct{})
		if l.onAppend != nil {
			l.onAppend(h.Start + h.Count)
		}
	}
	return nil
}

// ID is the log's UUID.
func (l *Log) ID() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hdr.ID
}

// Start is the first frame number the log still holds.
func (l *Log) Start() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hdr.Start
}

// Next is the number the next frame will get (0 when empty).
func (l *Log) Next() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hdr.Start + l.hdr.Count
}

// End is Next and the rolling checksum of frame Next-1 (the log's
// StartSum while it has no records): a replica at Next with that sum
// follows this history.
func (l *Log) End() (next, sum uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hdr.Start + l.hdr.Count, l.sum
}

// SumBefore is the rolling checksum of frame next-1 — the seed of frame
// next — if the log can tell: next-1 is one of its records, or next is
// its start (the seed it started with). ok is false otherwise.
func (l *Log) SumBefore(next uint64) (sum uint64, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	start, end := l.hdr.Start, l.hdr.Start+l.hdr.Count
	switch {
	case next == start && l.hdr.Count == 0 && start > 0:
		return l.sum, l.hdr.SumKnown, nil
	case next == start:
		return l.hdr.StartSum, l.hdr.SumKnown || start == 0, nil
	case next < start || next > end:
		return 0, false, nil
	case next == end:
		return l.sum, true, nil
	}
	var h [16]byte
	if _, err := l.f.ReadAt(h[:], int64(headerSize)+int64(next-1-start)*FrameSize); err != nil {
		return 0, false, fmt.Errorf("framelog: read: %w", err)
	}
	return binary.LittleEndian.Uint64(h[8:]), true, nil
}

// Stats returns counters.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.stats
}

// Wait returns when Next() > after, or with ctx's error.
func (l *Log) Wait(ctx context.Context, after uint64) error {
	for {
		l.mu.RLock()
		next, wake := l.hdr.Start+l.hdr.Count, l.wake
		l.mu.RUnlock()
		if next > after {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadFrames appends records with frame_no >= from to dst: at most max,
// but always ending at a commit frame. from older than Start gives
// ephpm.ErrNeedSnapshot; from at or past Next gives nothing.
func (l *Log) ReadFrames(dst []byte, from uint64, max int) ([]byte, error) {
	return l.readFrames(dst, from, max, true)
}

// ReadFramesPartial is ReadFrames without finishing the last transaction:
// a huge transaction goes out in pieces of at most max frames.
func (l *Log) ReadFramesPartial(dst []byte, from uint64, max int) ([]byte, error) {
	return l.readFrames(dst, from, max, false)
}

func (l *Log) readFrames(dst []byte, from uint64, max int, whole bool) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	start, next := l.hdr.Start, l.hdr.Start+l.hdr.Count
	if from < start {
		return dst, ephpm.ErrNeedSnapshot
	}
	if from >= next || max <= 0 {
		return dst, nil
	}
	n := min(uint64(max), next-from)
	base := len(dst)
	dst = append(dst, make([]byte, n*FrameSize)...)
	if _, err := l.f.ReadAt(dst[base:], int64(headerSize)+int64(from-start)*FrameSize); err != nil {
		return dst[:base], fmt.Errorf("framelog: read: %w", err)
	}
	// Finish the transaction the last record belongs to.
	for whole && from+n < next && binary.LittleEndian.Uint32(dst[len(dst)-FrameSize+20:]) == 0 {
		rec := make([]byte, FrameSize)
		if _, err := l.f.ReadAt(rec, int64(headerSize)+int64(from+n-start)*FrameSize); err != nil {
			return dst[:base], fmt.Errorf("framelog: read: %w", err)
		}
		dst = append(dst, rec...)
		n++
	}
	return dst, nil
}

// Close closes the log's files; the hook installed by Open must not run
// afterwards (close the database first).
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	if l.f != nil {
		errs = append(errs, l.f.Close())
		l.f = nil
	}
	if l.wal != nil {
		errs = append(errs, l.wal.Close())
		l.wal = nil
	}
	return errors.Join(errs...)
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// syncNames makes the log durable under its names: the entries in its
// directory (the log, the snapshot) and the directory's own entry in its
// parent, which MkdirAll created without syncing. Until both are synced
// a power cut could take the log away, and with it commits the WAL had
// not synced yet.
func (l *Log) syncNames() error {
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("sync the log's directory %s: %w", l.dir, err)
	}
	parent := filepath.Dir(l.dir)
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("sync the log directory's parent %s: %w", parent, err)
	}
	return nil
}

// syncDir makes the renames in dir durable. A variable so that tests can
// make it fail.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close() // the sync's error is the one to report
		return err
	}
	return d.Close()
}
