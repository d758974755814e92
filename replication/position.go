package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const posMagic = "EPHPMRP1"

// position is what a replica knows of its copy: which primary log it
// follows and the next frame it needs. Intent, when set, is the end of a
// batch that may or may not have been applied when the process died: the
// first batch after a restart then runs at least to Intent in one local
// transaction, so re-applied page images never show readers a mix.
type position struct {
	LogID  string
	Next   uint64
	Intent uint64
	// Sum is the rolling checksum of frame Next-1 (the primary's record
	// of it), if SumKnown: the primary checks it to tell a replica that
	// follows its history from one that diverged (see repair.go).
	Sum      uint64
	SumKnown bool
	// ExPrimary: the position is this node's own log end as a primary
	// that was replaced (demoted or restarted as a replica): its last
	// frames may never have reached the new primary. If the new primary
	// cannot check the position, the copy is quarantined before repair.
	ExPrimary bool
	// Repairing: a page-diff repair was under way (its pages may or may
	// not have been committed): repair again, without quarantine,
	// before streaming.
	Repairing bool
}

// Flags of the position file's second block.
const (
	posSumKnown  = 1
	posExPrimary = 2
	posRepairing = 4
)

// posSize: the original 64-byte block (log ID, next, intent, CRC), then
// 32 bytes added later under their own CRC (sum, flags), so a file
// written before reads with the sum unknown. Both go in one write.
const posSize = 96

// posFile is a replica's position, rewritten in place (one 96-byte write).
type posFile struct {
	f    *os.File
	tail *tailFile // the stream's (run); nil elsewhere
}

func posPath(dbPath string) string { return dbPath + "-replica" }

func openPos(dbPath string) (*posFile, position, error) {
	f, err := os.OpenFile(posPath(dbPath), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, position{}, fmt.Errorf("replica position: %w", err)
	}
	b := make([]byte, posSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		// Not "no position yet": starting over on a copy we cannot read
		// the position of would be a guess.
		return nil, position{}, errors.Join(fmt.Errorf("replica position: %w", err), f.Close())
	}
	return &posFile{f: f}, parsePos(b[:n]), nil
}

// parsePos reads a position file's bytes; none yet (or torn) is the zero
// position: bootstrap.
func parsePos(b []byte) position {
	if len(b) < 64 || string(b[:8]) != posMagic || crc32.ChecksumIEEE(b[:60]) != binary.LittleEndian.Uint32(b[60:]) {
		return position{}
	}
	pos := position{
		LogID:  strings.TrimRight(string(b[8:44]), "\x00"),
		Next:   binary.LittleEndian.Uint64(b[44:]),
		Intent: binary.LittleEndian.Uint64(b[52:]),
	}
	if len(b) >= posSize && crc32.ChecksumIEEE(b[:92]) == binary.LittleEndian.Uint32(b[92:]) {
		flags := binary.LittleEndian.Uint32(b[72:])
		pos.Sum = binary.LittleEndian.Uint64(b[64:])
		pos.SumKnown = flags&posSumKnown != 0
		pos.ExPrimary = flags&posExPrimary != 0
		pos.Repairing = flags&posRepairing != 0
	}
	return pos
}

// readPos reads the position file without creating it: exists is false
// when this node never was a replica of the site (or was promoted since).
func readPos(dbPath string) (pos position, exists bool, err error) {
	b, err := os.ReadFile(posPath(dbPath))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, false, nil
	}
	if err != nil {
		return position{}, false, fmt.Errorf("replica position: %w", err)
	}
	return parsePos(b), true, nil
}

// writePosDurable records pos (a demoted primary's log end) and syncs the
// file and its directory: the replica starts from it.
func writePosDurable(dbPath string, pos position) error {
	pf, _, err := openPos(dbPath)
	if err != nil {
		return err
	}
	if err := pf.write(pos); err != nil {
		return errors.Join(err, pf.close())
	}
	if err := pf.f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("replica position: %w", err), pf.close())
	}
	if err := pf.close(); err != nil {
		return fmt.Errorf("replica position: %w", err)
	}
	if err := syncDir(filepath.Dir(dbPath)); err != nil {
		return fmt.Errorf("replica position: %w", err)
	}
	return nil
}

// removePos removes the position file for good (a promoted replica's
// log continues from it; it must not be adopted again after a restart).
func removePos(dbPath string) error {
	if err := os.Remove(posPath(dbPath)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replica position: %w", err)
	}
	if err := syncDir(filepath.Dir(dbPath)); err != nil {
		// Removed but perhaps not for good. The retry finds no file to
		// remove; the new log's first commit syncs this same directory
		// (framelog syncs the log directory's parent), so no write is
		// acknowledged before the removal is durable.
		return fmt.Errorf("replica position: remove: %w", err)
	}
	return nil
}

// syncDir makes a creation or removal in dir durable. A variable so
// that tests can make it fail.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		d.Close() // the sync's error is the one to report
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func (p *posFile) write(pos position) error {
	if len(pos.LogID) != 36 && pos.LogID != "" {
		return errors.New("replica position: bad log id")
	}
	b := make([]byte, posSize)
	copy(b, posMagic)
	copy(b[8:44], pos.LogID)
	binary.LittleEndian.PutUint64(b[44:], pos.Next)
	binary.LittleEndian.PutUint64(b[52:], pos.Intent)
	binary.LittleEndian.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
	var flags uint32
	if pos.SumKnown {
		flags |= posSumKnown
	}
	if pos.ExPrimary {
		flags |= posExPrimary
	}
	if pos.Repairing {
		flags |= posRepairing
	}
	binary.LittleEndian.PutUint64(b[64:], pos.Sum)
	binary.LittleEndian.PutUint32(b[72:], flags)
	binary.LittleEndian.PutUint32(b[92:], crc32.ChecksumIEEE(b[:92]))
	if _, err := p.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("replica position: %w", err)
	}
	return nil
}

// sync makes the position durable (after a repair: the copy was
// replaced, and the old position must not come back).
func (p *posFile) sync() error {
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("replica position: %w", err)
	}
	return nil
}

func (p *posFile) close() error {
	if p.tail != nil {
		return errors.Join(p.tail.close(), p.f.Close())
	}
	return p.f.Close()
}

// restart records a new position with nothing applied from it yet (a
// bootstrap's end, a log reset): the tail starts over there.
func (p *posFile) restart(pos position) error {
	if p.tail != nil {
		if err := p.tail.reset(pos.LogID, pos.Next); err != nil {
			return err
		}
	}
	return p.write(pos)
}
