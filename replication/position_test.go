package replication_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ephpm/ephpm/replication"
)

// A position file that does not exist, is empty or torn means "no
// position yet"; one that cannot be read is an error, not a reason to
// start over.
func TestPositionReadError(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	if next, err := replication.OpenPos(db); err != nil || next != 0 {
		t.Fatalf("new position: %d, %v", next, err)
	}
	if err := os.WriteFile(db+"-replica", []byte("EPHPMRP1 torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if next, err := replication.OpenPos(db); err != nil || next != 0 {
		t.Fatalf("torn position: %d, %v", next, err)
	}
	// A FIFO opens for reading and writing, but cannot be read at an
	// offset (ESPIPE).
	other := filepath.Join(dir, "o.db")
	if err := syscall.Mkfifo(other+"-replica", 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	if _, err := replication.OpenPos(other); err == nil {
		t.Fatal("an unreadable position file was taken for none")
	}
}
