// Package task owns background goroutines: a Group starts each under
// one context that its Close cancels, and Close returns only when every
// one of them has ended (LiteFS's Store does the same with an errgroup;
// this is the small equivalent, golang.org/x/sync not being a
// dependency). Every is the one shape of a periodic loop.
package task

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Group runs goroutines that share a context and a lifetime. The first
// goroutine to return an error cancels the context of the others; Wait
// and Close return every error joined. The zero Group is not usable:
// make one with NewGroup.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	errs []error
}

// NewGroup returns a group whose goroutines run until parent ends, one
// of them fails, or Close is called.
func NewGroup(parent context.Context) *Group {
	ctx, cancel := context.WithCancel(parent)
	return &Group{ctx: ctx, cancel: cancel}
}

// Context is the context every goroutine of the group gets: done when
// the parent ended, a goroutine failed, or Close was called.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs f in a new goroutine with the group's context. f should
// return when that context is done; an error it returns cancels the
// group.
func (g *Group) Go(f func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(g.ctx); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
			g.cancel()
		}
	}()
}

// Every runs f every d in a goroutine of the group (see the function
// Every).
func (g *Group) Every(d time.Duration, f func(ctx context.Context)) {
	g.Go(func(ctx context.Context) error { return Every(ctx, d, f) })
}

// Wait waits for every goroutine without cancelling them and returns
// their errors, joined (nil if none failed).
func (g *Group) Wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// Close cancels the group's context and waits for every goroutine; it
// returns what Wait returns. It may be called more than once.
func (g *Group) Close() error {
	g.cancel()
	return g.Wait()
}

// Every calls f every d until ctx is done, then returns nil. The first
// call is after d, not at once. f runs on the caller's goroutine, so
// calls never overlap: one that takes longer than d delays the next
// (ticks are dropped, as with time.Ticker, never queued). f gets ctx and
// should return soon after it is done.
func Every(ctx context.Context, d time.Duration, f func(ctx context.Context)) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if ctx.Err() != nil {
			return nil
		}
		f(ctx)
	}
}
