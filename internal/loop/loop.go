// Package loop is how ephpm's long-lived components own their
// goroutines (as LiteFS's Store does with an errgroup): each holds one
// Group, starts every background loop with Group.Go, and its Close calls
// Group.Close, which cancels the loops' context and returns only when all
// of them have ended. A periodic loop is Every inside Go, not a
// hand-written ticker.
package loop

import (
	"context"
	"sync"
	"time"
)

// Group owns goroutines: they share a context that Close cancels, and
// Close waits for them. The zero Group is not usable; call NewGroup.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // orders Go against Close
	closed bool
	wg     sync.WaitGroup
}

// NewGroup returns a Group whose context is not cancelled yet.
func NewGroup() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Context ends when Close is called: a loop's context, or the parent of
// one its owner may cancel on its own.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn in a goroutine with the group's context. After Close it
// runs nothing and reports false.
func (g *Group) Go(fn func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(func() { fn(g.ctx) })
	return true
}

// Close cancels the group's context and waits for every goroutine it
// started. It may be called more than once.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
}

// Every calls fn every d, the first time d after it starts, until ctx
// ends or fn returns false; then it returns. Run it from Group.Go:
//
//	g.Go(func(ctx context.Context) { loop.Every(ctx, time.Second, o.expire) })
func Every(ctx context.Context, d time.Duration, fn func(now time.Time) bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !fn(now) {
				return
			}
		}
	}
}
