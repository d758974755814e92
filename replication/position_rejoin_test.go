package replication

import (
	"encoding/binary"
	"hash/crc32"
	"path/filepath"
	"testing"
)

// A position file written before checksums were recorded reads with the
// sum unknown; a new one round-trips every field.
func TestPositionChecksumCompatible(t *testing.T) {
	old := make([]byte, 64)
	copy(old, posMagic)
	copy(old[8:44], "0123456789abcdef0123456789abcdef0123")
	binary.LittleEndian.PutUint64(old[44:], 42)
	binary.LittleEndian.PutUint32(old[60:], crc32.ChecksumIEEE(old[:60]))
	if p := parsePos(old); p.Next != 42 || p.SumKnown || p.ExPrimary || p.Repairing {
		t.Fatalf("old file: %+v", p)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	want := position{LogID: "0123456789abcdef0123456789abcdef0123", Next: 7, Intent: 9, Sum: 0xdeadbeef, SumKnown: true, ExPrimary: true, Repairing: true}
	if err := writePosDurable(db, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := readPos(db)
	if err != nil || !ok || got != want {
		t.Fatalf("read %+v %v %v, want %+v", got, ok, err, want)
	}
	// The first 64 bytes still read as the old layout did.
	b := make([]byte, posSize)
	pf, _, err := openPos(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pf.f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	pf.close()
	if p := parsePos(b[:64]); p.Next != 7 || p.Intent != 9 || p.SumKnown {
		t.Fatalf("old reader of a new file: %+v", p)
	}
	// A torn second block: the sum is unknown, not wrong.
	b[70] ^= 1
	if p := parsePos(b); p.SumKnown || p.Next != 7 {
		t.Fatalf("torn: %+v", p)
	}
}
