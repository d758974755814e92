// Package lazypool keeps values that cost something to hold open — a
// site's database, a site's php-fpm master — under a key: the first user
// of a key opens its value, concurrent users share it, and a value nobody
// has held for Idle is closed by the pool's reaper. An idle key costs
// nothing but the pool's map entry until it is reaped, then nothing.
//
// sqlite.Pool (site databases) and phpfpm.Pools (per-site php-fpm) are
// built on it.
package lazypool

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ephpm/ephpm/internal/task"
)

// ErrClosed is returned by Acquire after Close.
var ErrClosed = errors.New("lazypool: closed")

// Reason says why a value is closed.
type Reason int

const (
	// Idle: nobody held the value for Config.Idle (the reaper closes it).
	Idle Reason = iota
	// Closing: the pool is closing (Close closes every value).
	Closing
)

func (r Reason) String() string {
	if r == Idle {
		return "idle"
	}
	return "closing"
}

// Opener opens the value of key. It runs on the goroutine of the Acquire
// that found the key absent, with that Acquire's context, and holds no
// lock of the pool: it may block, and it may call the pool (Len, Peek,
// Acquire of another key — not of its own key, which would wait for
// itself). Acquires of the same key wait for it. An error is returned
// to each of them and not kept: the next Acquire opens again.
type Opener[V any] func(ctx context.Context, key string) (V, error)

// Config configures a Pool. Close and Idle are required.
type Config[V any] struct {
	// Close closes a value an Opener returned: one idle for Idle, on the
	// reaper goroutine, or each one still open, on the goroutine of
	// Close. It is called once per value, never for a failed open, and
	// holds no lock of the pool: it may block (the reaper's next pass
	// waits) and may call Len and Peek.
	Close func(key string, v V, why Reason) error
	// Idle is how long a value nobody holds stays open.
	Idle time.Duration
	// Interval is how often the reaper looks for idle values; default
	// Idle/4.
	Interval time.Duration
}

// Pool holds opened values by key. Its methods are safe for
// concurrent use.
type Pool[V any] struct {
	cfg Config[V]

	mu      sync.Mutex
	entries map[string]*entry[V]
	closed  bool

	tasks *task.Group // the reaper
}

type entry[V any] struct {
	ready    chan struct{} // closed once v/err are set
	v        V
	err      error
	refs     int       // under Pool.mu
	lastUsed time.Time // under Pool.mu: the last release
}

// New returns a pool and starts its reaper; Close stops it. It panics
// if Close or Idle is missing: that is a bug in the caller.
func New[V any](cfg Config[V]) *Pool[V] {
	if cfg.Close == nil || cfg.Idle <= 0 {
		panic("lazypool: Config.Close and Idle are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = cfg.Idle / 4
	}
	p := &Pool[V]{cfg: cfg, entries: map[string]*entry[V]{}, tasks: task.NewGroup(context.Background())}
	p.tasks.Every(cfg.Interval, func(context.Context) { p.reap(time.Now().Add(-cfg.Idle)) })
	return p
}

// Acquire returns the value of key, opening it with open if nobody has
// (the opener of whichever Acquire comes first is used); call release
// (idempotent) when done with it. A value stays open while anyone holds
// it. A cancelled ctx ends the wait for another caller's open, not that
// open.
func (p *Pool[V]) Acquire(ctx context.Context, key string, open Opener[V]) (v V, release func(), err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return v, nil, ErrClosed
	}
	e := p.entries[key]
	opener := e == nil
	if opener {
		e = &entry[V]{ready: make(chan struct{})}
		p.entries[key] = e
	}
	e.refs++
	p.mu.Unlock()

	if opener {
		e.v, e.err = open(ctx, key)
		if e.err != nil {
			// Not kept: the next Acquire opens again.
			p.mu.Lock()
			if p.entries[key] == e {
				delete(p.entries, key)
			}
			p.mu.Unlock()
		}
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			p.release(e)
			return v, nil, ctx.Err()
		}
	}
	if e.err != nil {
		p.release(e)
		return v, nil, e.err
	}
	var once sync.Once
	return e.v, func() { once.Do(func() { p.release(e) }) }, nil
}

func (p *Pool[V]) release(e *entry[V]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.refs--
	e.lastUsed = time.Now()
}

// Peek returns the value of key if it is open, without holding it: the
// caller must not keep it (it may be closed at any time after).
func (p *Pool[V]) Peek(key string) (v V, ok bool) {
	p.mu.Lock()
	e := p.entries[key]
	p.mu.Unlock()
	if e == nil {
		return v, false
	}
	select {
	case <-e.ready:
		return e.v, e.err == nil
	default:
		return v, false
	}
}

// Len is the number of keys open or opening.
func (p *Pool[V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// reap closes the values nobody has held since before cutoff.
func (p *Pool[V]) reap(cutoff time.Time) {
	type idle struct {
		key string
		v   V
	}
	var list []idle
	p.mu.Lock()
	for key, e := range p.entries {
		select {
		case <-e.ready:
		default:
			continue // still opening
		}
		if e.refs == 0 && e.err == nil && e.lastUsed.Before(cutoff) {
			delete(p.entries, key)
			list = append(list, idle{key, e.v})
		}
	}
	p.mu.Unlock()
	for _, x := range list {
		_ = p.cfg.Close(x.key, x.v, Idle) // nobody to tell; Close logs what matters
	}
}

// Close stops the reaper and closes every value, held or not (after
// waiting for those still opening); it returns their Close errors
// joined. Acquire fails with ErrClosed from then on. A second Close
// returns nil.
func (p *Pool[V]) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	all := p.entries
	p.entries = map[string]*entry[V]{}
	p.mu.Unlock()
	_ = p.tasks.Close() // the reaper returns no error
	var errs []error
	for key, e := range all {
		<-e.ready
		if e.err == nil {
			errs = append(errs, p.cfg.Close(key, e.v, Closing))
		}
	}
	return errors.Join(errs...)
}
