package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/sqlite"
)

func TestPoolSharesAndClosesIdle(t *testing.T) {
	dir := t.TempDir()
	var opens atomic.Int32
	p := sqlite.NewPool(sqlite.PoolConfig{
		IdleClose: 50 * time.Millisecond,
		OnOpen: func(context.Context, *sqlite.DB) error {
			opens.Add(1)
			return nil
		},
	})
	defer p.Close()
	ctx := context.Background()
	a1, rel1, err := p.Acquire(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	a2, rel2, err := p.Acquire(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	b, relb, err := p.Acquire(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	if a1 != a2 {
		t.Error("two Acquires of one path gave different DBs")
	}
	if a1 == b {
		t.Error("two paths share a DB")
	}
	if got := opens.Load(); got != 2 {
		t.Errorf("OnOpen ran %d times, want 2", got)
	}
	rel1()
	rel1() // idempotent
	relb()
	// a is still held by rel2; b must close once idle.
	deadline := time.Now().Add(5 * time.Second)
	for p.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("idle database not closed: %d open", p.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := b.AcquireWriter(ctx); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("idle-closed DB still usable: %v", err)
	}
	// a stays usable while held.
	var one int
	if err := a2.Reader().QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Errorf("held DB closed: %v", err)
	}
	rel2()
	// Reopen after idle close works.
	b2, relb2, err := p.Acquire(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer relb2()
	if b2 == b {
		t.Error("got the closed DB back")
	}
}

func TestPoolOpenErrorNotCached(t *testing.T) {
	fail := true
	p := sqlite.NewPool(sqlite.PoolConfig{OnOpen: func(context.Context, *sqlite.DB) error {
		if fail {
			return errors.New("boom")
		}
		return nil
	}})
	defer p.Close()
	path := filepath.Join(t.TempDir(), "c.db")
	if _, _, err := p.Acquire(context.Background(), path); err == nil {
		t.Fatal("Acquire succeeded despite OnOpen error")
	}
	fail = false
	_, rel, err := p.Acquire(context.Background(), path)
	if err != nil {
		t.Fatalf("retry after failed open: %v", err)
	}
	rel()
}

func TestPoolCloseClosesAll(t *testing.T) {
	p := sqlite.NewPool(sqlite.PoolConfig{})
	db, _, err := p.Acquire(context.Background(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AcquireWriter(context.Background()); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("DB open after Pool.Close: %v", err)
	}
	if _, _, err := p.Acquire(context.Background(), "x.db"); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
}

// hooks records what a pool tells it.
type hooks struct{ opened, closed atomic.Int32 }

func (h *hooks) OnOpen(context.Context, *sqlite.DB) error { h.opened.Add(1); return nil }
func (h *hooks) OnClose(*sqlite.DB)                       { h.closed.Add(1) }

var _ sqlite.PoolHooks = (*hooks)(nil)

func TestPoolSetHooks(t *testing.T) {
	p := sqlite.NewPool(sqlite.PoolConfig{})
	var h hooks
	if err := p.SetHooks(&h); err != nil {
		t.Fatal(err)
	}
	_, rel, err := p.Acquire(context.Background(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	rel()
	// Too late: a database was already handed out without these.
	if err := p.SetHooks(&hooks{}); !errors.Is(err, sqlite.ErrPoolInUse) {
		t.Errorf("SetHooks after Acquire: %v, want ErrPoolInUse", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if h.opened.Load() != 1 || h.closed.Load() != 1 {
		t.Errorf("hooks saw %d opens and %d closes, want 1 and 1", h.opened.Load(), h.closed.Load())
	}
}
