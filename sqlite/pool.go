package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ephpm/ephpm/internal/lazypool"
)

// DefaultIdleClose is how long a database stays open after its last user
// released it: long enough to serve a burst of requests from one open,
// short enough that thousands of idle sites cost nothing.
const DefaultIdleClose = 2 * time.Minute

// minSweep is the shortest interval between two looks for idle
// databases (tests use an IdleClose of milliseconds).
const minSweep = 10 * time.Millisecond

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Template is the Config of every database; Path is set per Acquire.
	Template Config
	// IdleClose defaults to DefaultIdleClose.
	IdleClose time.Duration
	// OnOpen, if set, runs once after each database opens (e.g. to add
	// commit hooks); an error closes the database and fails the Acquire.
	// It runs on the goroutine of the Acquire that opens the database,
	// with its context, before any other Acquire of that path returns;
	// it may block them (they wait) but no other path. It may call the
	// pool for other paths (Len, IfOpen), not Acquire its own.
	OnOpen func(ctx context.Context, db *DB) error
	// OnClose, if set, runs after a database the pool opened is closed:
	// on the pool's sweeper goroutine (idle), on Close's, or on the
	// Acquire whose OnOpen failed. It is called once per database, may
	// block (the next sweep waits) and may call Len and IfOpen.
	OnClose func(db *DB)
}

// PoolHooks observe the databases a pool opens and closes, with the
// contracts of PoolConfig.OnOpen and OnClose. replication.Manager is
// one; it takes the pool, so it is installed after with SetHooks.
type PoolHooks interface {
	OnOpen(ctx context.Context, db *DB) error
	OnClose(db *DB)
}

// ErrPoolInUse is returned by SetHooks on a pool that has already been
// asked for a database: that database would never have seen the hooks.
var ErrPoolInUse = errors.New("sqlite: pool already in use: hooks must be set before the first Acquire")

// Pool opens site databases on first use, shares them between users and
// closes them when they have been idle for IdleClose.
type Pool struct {
	cfg PoolConfig
	dbs *lazypool.Pool[*DB] // by path

	hookMu  sync.Mutex
	used    bool // Acquire was called: the hooks are fixed
	onOpen  func(ctx context.Context, db *DB) error
	onClose func(db *DB)
}

// NewPool returns a pool and starts its idle sweeper; Close stops it.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.IdleClose <= 0 {
		cfg.IdleClose = DefaultIdleClose
	}
	p := &Pool{cfg: cfg, onOpen: cfg.OnOpen, onClose: cfg.OnClose}
	p.dbs = lazypool.New(lazypool.Config[*DB]{
		Close:    p.close,
		Idle:     cfg.IdleClose,
		Interval: max(cfg.IdleClose/4, minSweep),
	})
	return p
}

// SetHooks makes h the pool's OnOpen and OnClose, in place of
// PoolConfig's: for a hook that needs the pool built first. It must be
// called before the first Acquire; after that it changes nothing and
// returns ErrPoolInUse.
func (p *Pool) SetHooks(h PoolHooks) error {
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	if p.used {
		return ErrPoolInUse
	}
	p.onOpen, p.onClose = h.OnOpen, h.OnClose
	return nil
}

// hooks returns OnOpen and OnClose (fixed once Acquire was called).
func (p *Pool) hooks() (func(ctx context.Context, db *DB) error, func(db *DB)) {
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	return p.onOpen, p.onClose
}

func (p *Pool) open(ctx context.Context, path string) (*DB, error) {
	cfg := p.cfg.Template
	cfg.Path = path
	onOpen, onClose := p.hooks()
	db, err := Open(ctx, cfg)
	if err == nil && onOpen != nil {
		if err = onOpen(ctx, db); err != nil {
			db.Close()
			if onClose != nil {
				onClose(db)
			}
			db = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open site db %q: %w", path, err)
	}
	return db, nil
}

func (p *Pool) close(_ string, db *DB, _ lazypool.Reason) error {
	err := db.Close()
	if _, onClose := p.hooks(); onClose != nil {
		onClose(db)
	}
	return err
}

// Acquire returns the open database at path, opening it if needed; call
// release when done with it.
func (p *Pool) Acquire(ctx context.Context, path string) (*DB, func(), error) {
	p.hookMu.Lock()
	p.used = true
	p.hookMu.Unlock()
	db, release, err := p.dbs.Acquire(ctx, path, p.open)
	if errors.Is(err, lazypool.ErrClosed) {
		err = ErrClosed
	}
	return db, release, err
}

// Len is the number of open (or opening) databases.
func (p *Pool) Len() int { return p.dbs.Len() }

// Close stops the sweeper and closes every database, in use or not.
func (p *Pool) Close() error { return p.dbs.Close() }

// IfOpen calls f with the database at path if the pool has it open
// (without taking a reference: f must not keep it).
func (p *Pool) IfOpen(path string, f func(*DB)) {
	if db, ok := p.dbs.Peek(path); ok {
		f(db)
	}
}
