package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultIdleClose is how long a database stays open after its last user
// released it: long enough to serve a burst of requests from one open,
// short enough that thousands of idle sites cost nothing.
const DefaultIdleClose = 2 * time.Minute

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Template is the Config of every database; Path is set per Acquire.
	Template Config
	// IdleClose defaults to DefaultIdleClose.
	IdleClose time.Duration
	// OnOpen, if set, runs once after each database opens (e.g. to add
	// commit hooks); an error closes the database and fails the Acquire.
	OnOpen func(ctx context.Context, db *DB) error
	// OnClose, if set, runs after a database the pool opened is closed.
	OnClose func(db *DB)
}

// Pool opens site databases on first use, shares them between users and
// closes them when they have been idle for IdleClose.
type Pool struct {
	cfg PoolConfig

	mu     sync.Mutex
	dbs    map[string]*poolEntry
	closed bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type poolEntry struct {
	ready    chan struct{} // closed once db/err are set
	db       *DB
	err      error
	refs     int
	lastUsed time.Time
}

// NewPool returns a pool and starts its idle sweeper; Close stops it.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.IdleClose <= 0 {
		cfg.IdleClose = DefaultIdleClose
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{cfg: cfg, dbs: map[string]*poolEntry{}, cancel: cancel}
	p.wg.Add(1)
	go p.sweep(ctx)
	return p
}

// Acquire returns the open database at path, opening it if needed; call
// release when done with it.
func (p *Pool) Acquire(ctx context.Context, path string) (*DB, func(), error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, ErrClosed
	}
	e := p.dbs[path]
	opener := e == nil
	if opener {
		e = &poolEntry{ready: make(chan struct{})}
		p.dbs[path] = e
	}
	e.refs++
	p.mu.Unlock()

	if opener {
		cfg := p.cfg.Template
		cfg.Path = path
		db, err := Open(ctx, cfg)
		if err == nil && p.cfg.OnOpen != nil {
			if err = p.cfg.OnOpen(ctx, db); err != nil {
				db.Close()
				if p.cfg.OnClose != nil {
					p.cfg.OnClose(db)
				}
				db = nil
			}
		}
		e.db, e.err = db, err
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			p.release(path, e)
			return nil, nil, ctx.Err()
		}
	}
	if e.err != nil {
		p.release(path, e)
		return nil, nil, fmt.Errorf("open site db %q: %w", path, e.err)
	}
	var once sync.Once
	return e.db, func() { once.Do(func() { p.release(path, e) }) }, nil
}

func (p *Pool) release(path string, e *poolEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.refs--
	e.lastUsed = time.Now()
	if e.err != nil && e.refs == 0 && p.dbs[path] == e {
		delete(p.dbs, path) // let the next Acquire retry the open
	}
}

// Len is the number of open (or opening) databases.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dbs)
}

func (p *Pool) sweep(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(max(p.cfg.IdleClose/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.closeIdle(time.Now().Add(-p.cfg.IdleClose))
	}
}

// closeIdle closes databases unused since before cutoff.
func (p *Pool) closeIdle(cutoff time.Time) {
	var idle []*DB
	p.mu.Lock()
	for path, e := range p.dbs {
		select {
		case <-e.ready:
		default:
			continue // still opening
		}
		if e.refs == 0 && e.lastUsed.Before(cutoff) {
			delete(p.dbs, path)
			if e.db != nil {
				idle = append(idle, e.db)
			}
		}
	}
	p.mu.Unlock()
	for _, db := range idle {
		db.Close()
		if p.cfg.OnClose != nil {
			p.cfg.OnClose(db)
		}
	}
}

// Close stops the sweeper and closes every database, in use or not.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	dbs := p.dbs
	p.dbs = map[string]*poolEntry{}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	var errs []error
	for _, e := range dbs {
		<-e.ready
		if e.db != nil {
			errs = append(errs, e.db.Close())
			if p.cfg.OnClose != nil {
				p.cfg.OnClose(e.db)
			}
		}
	}
	return errors.Join(errs...)
}

// IfOpen calls f with the database at path if the pool has it open
// (without taking a reference: f must not keep it).
func (p *Pool) IfOpen(path string, f func(*DB)) {
	p.mu.Lock()
	e := p.dbs[path]
	p.mu.Unlock()
	if e == nil {
		return
	}
	select {
	case <-e.ready:
		if e.db != nil {
			f(e.db)
		}
	default:
	}
}
