package replication_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
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

var errInjected = errors.New("injected: fsync of the directory failed")

// failingDirSync makes the position file's directory syncs fail while
// fail is set.
func failingDirSync(t *testing.T) *atomic.Bool {
	var fail atomic.Bool
	var real func(string) error
	real, restore := replication.SetSyncDir(func(dir string) error {
		if fail.Load() {
			return errInjected
		}
		return real(dir)
	})
	t.Cleanup(restore)
	return &fail
}

// A demoted primary's position and a promoted replica's removal of it
// are durable only once the directory is synced: a failed sync fails
// the write (demotion and promotion then fail), and it succeeds once the
// sync works again.
func TestPositionDirSyncFailure(t *testing.T) {
	const id = "0b9e7a52-7c1e-4c8e-9a0e-2f4b8f1c3d5a"
	db := filepath.Join(t.TempDir(), "s.db")
	fail := failingDirSync(t)

	fail.Store(true)
	if err := replication.WritePosDurable(db, id, 42); !errors.Is(err, errInjected) {
		t.Fatalf("durable position with a failing directory sync: %v, want %v", err, errInjected)
	}
	fail.Store(false)
	if err := replication.WritePosDurable(db, id, 42); err != nil {
		t.Fatal(err)
	}
	if gotID, next, exists, err := replication.ReadPos(db); err != nil || !exists || gotID != id || next != 42 {
		t.Fatalf("position: %q %d exists=%v %v, want %q 42", gotID, next, exists, err, id)
	}

	fail.Store(true)
	if err := replication.RemovePos(db); !errors.Is(err, errInjected) {
		t.Fatalf("removing the position with a failing directory sync: %v, want %v", err, errInjected)
	}
	fail.Store(false)
	if err := replication.RemovePos(db); err != nil {
		t.Fatal(err)
	}
	if _, _, exists, err := replication.ReadPos(db); err != nil || exists {
		t.Fatalf("position after removal: exists=%v %v", exists, err)
	}
}
