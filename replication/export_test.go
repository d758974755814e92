package replication

import (
	"bufio"
	"errors"
	"time"
)

// ReadMsg and ParseFrames expose the stream codec to the fuzz tests.
func ReadMsg(r *bufio.Reader) (byte, []byte, error) { return readMsg(r, nil) }

func ParseFrames(recs []byte, want uint64) (uint64, error) {
	var b txBatch
	next, err := parseFrames(&b, recs, want)
	if err == nil {
		_ = b.sorted()
	}
	return next, err
}

// FrameCookie makes a read-your-writes cookie value as m issues it.
func FrameCookie(m *Manager, site string, frame uint64, expires time.Time) string {
	return m.frameCookie(site, frame, expires)
}

// ParseFrameCookie reads a cookie value as m checks it.
func ParseFrameCookie(m *Manager, site, v string, now time.Time) (uint64, bool) {
	return m.parseFrameCookie(site, v, now)
}

// Refusal sentinels and their wire words, for the table test.
var (
	ErrLogReset = errLogReset
	ErrAhead    = errAhead
	RefusalWord = refusalWord
	RefusalErr  = refusalErr
)

// OpenPos opens a replica's position file as the stream does.
func OpenPos(dbPath string) (next uint64, err error) {
	pf, pos, err := openPos(dbPath)
	if err != nil {
		return 0, err
	}
	return pos.Next, pf.close()
}

// WriteTail, ReadTail and AddTail reach a replica's tail file.
func WriteTail(dbPath, id string, start uint64, recs []byte, max int) error {
	return writeTail(dbPath, id, start, recs, max)
}

func ReadTail(dbPath, id string, next uint64) ([]byte, error) { return readTail(dbPath, id, next) }

// AddTail opens the tail as a replica at (id, next) does, adds recs
// (frames from first) and closes it.
func AddTail(dbPath, id string, next, first uint64, recs []byte, max int) error {
	t, err := openTail(dbPath, position{LogID: id, Next: next}, max)
	if err != nil {
		return err
	}
	if err := t.add(id, first, [][]byte{recs}); err != nil {
		return errors.Join(err, t.close())
	}
	return t.close()
}

// SetSyncDir replaces how position files sync their directory (a test
// makes it fail); it returns the real one and what restores it.
func SetSyncDir(f func(dir string) error) (real func(string) error, restore func()) {
	old := syncDir
	syncDir = f
	return old, func() { syncDir = old }
}

// WritePosDurable records (id, next) as a demoted primary does.
func WritePosDurable(dbPath, id string, next uint64) error {
	return writePosDurable(dbPath, position{LogID: id, Next: next})
}

// RemovePos removes the position file as a promoted replica does.
func RemovePos(dbPath string) error { return removePos(dbPath) }

// ReadPos reads the position file without creating it.
func ReadPos(dbPath string) (id string, next uint64, exists bool, err error) {
	pos, exists, err := readPos(dbPath)
	return pos.LogID, pos.Next, exists, err
}

// ReadRepairMsg and the repair parsers, for the fuzz tests.
func ReadRepairMsg(r *bufio.Reader) (byte, []byte, error) { return readMsgOf(r, nil, repairTypes) }

func ParseRepairBlocks(p []byte) (uint32, int, error) {
	pages, hs, err := parseBlocks(p)
	return pages, len(hs), err
}

// ParseRepairDiff returns the page numbers the diff names.
func ParseRepairDiff(p []byte, pages uint32) ([]uint32, error) {
	d, err := parseDiff(p, pages)
	var out []uint32
	for _, b := range d {
		for i := range b.hashes {
			out = append(out, b.index*blockPages+uint32(i)+1)
		}
	}
	return out, err
}

func ParseRepairWant(p []byte, pages uint32) ([]uint32, error) { return parseWant(p, pages) }

func ParseRepairPages(p []byte) (int, error) {
	pg, err := parsePages(p)
	for _, x := range pg {
		if len(x.Data) != 4096 {
			panic("short page")
		}
	}
	return len(pg), err
}

// RepairBlockPages is how many pages a block hash covers.
const RepairBlockPages = blockPages
